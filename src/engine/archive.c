/*
 * archive.c — the archive front end: cache members judged where they lie.
 *
 * An archive is read with libarchive (zip, seekable, so a zipapp's "#!"
 * line and the central directory's sizes are honoured; tar in every
 * compression libarchive knows), never extracted. Pass 1 records every
 * member's name, type, size and mtime, and the first bytes of each cache
 * member (all of it under --deep). When a hash-based pyc is among them,
 * pass 2 reads the source members those pycs name, and nothing else: a
 * timestamp-only archive is judged without decompressing a single source.
 * Then each cache member goes to pyc_verdict_judge_view with a view of
 * the archive as a directory tree (member_stat, member_hash below): the
 * library decides, by the same rules as on a file system.
 *
 * The mtime a source member will have (extracted use) is what an extractor
 * that restores times gives it: Info-ZIP's unzip takes the extended
 * timestamp field (0x5455, UTC) when the member has one, else the DOS
 * date/time (2-second resolution) read as local time — libarchive's zip
 * reader does the same (mktime, so TZ is honoured: set TZ to the zone of
 * the machine that will extract, UTC on AWS Lambda); tar keeps seconds and,
 * in pax headers, the fraction, which GNU tar restores. For zipimport, the
 * mtime is always the DOS date/time of the central directory, converted
 * with mktime as zipimport's _parse_dostime (3.8+) / parse_dostime (2.7-3.7)
 * does: libarchive does not expose the raw DOS fields when an extended
 * timestamp overrides them, so this file reads the central directory
 * itself (read_zip_dostimes), the same records zipimport's
 * _read_directory reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

#if PYC_HAVE_LIBARCHIVE
#include <archive.h>
#include <archive_entry.h>
#include <nettle/sha2.h>
#endif

#include "engine/archive.h"
#include "engine/image.h"
#include "platform/noatime.h"

int archive_parse_mtime(const char *text, archive_options *out)
{
    if (strcmp(text, "archive") == 0) {
        out->mtime = ARCHIVE_MTIME_ARCHIVE;
        return 0;
    }
    if (strcmp(text, "now") == 0) {
        out->mtime = ARCHIVE_MTIME_NOW;
        return 0;
    }
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < 0)
        return -1;
    out->mtime = ARCHIVE_MTIME_EPOCH;
    out->epoch = (int64_t)v;
    return 0;
}

#if PYC_HAVE_LIBARCHIVE

/* ---- members ------------------------------------------------------------------------ */

enum member_type { MEMBER_FILE = 1, MEMBER_DIR, MEMBER_OTHER };

struct member {
    char *name;              /* normalised: no "./", no "//", no trailing '/' */
    enum member_type type;
    int64_t size;            /* uncompressed, -1 unknown */
    int64_t mtime;           /* seconds, as recorded */
    long mtime_nsec;
    bool has_dos;            /* zip: DOS date/time from the central directory */
    uint16_t dos_date, dos_time;
    bool cache;              /* judged: a cache name, or inside __pycache__ */
    const char *layer;       /* a container image's path: its layer's digest
                                (owned by the image set) */
    unsigned char *head;     /* cache: first bytes (all under --deep) */
    size_t head_len;
    bool head_ok;            /* the bytes could be read */
    bool need_data;          /* a source a hash-based pyc needs (pass 2) */
    unsigned char *data;     /* pass 2: the source's bytes */
    size_t data_len;
    int data_error;          /* pass 2: why the bytes are missing */
    bool superseded;         /* a later member has the same name */
    bool convert;            /* archive_convert: the header is replaced */
    unsigned char new_head[PYC_HEADER_MAX];
    size_t new_head_len;
    bool written;            /* archive_convert: written out already */
    unsigned char digest[32]; /* sha256 of what was written (a wheel's RECORD) */
    int64_t written_size;
};

struct archive_set {
    const char *path;        /* as given, for display */
    bool zip;                /* a zip (libarchive's format) */
    struct member *v;
    size_t n, cap;
    size_t *slots;           /* open addressing: index + 1, 0 empty */
    size_t nslots;
    bool zipimport;
    const archive_options *aopt;
    int64_t now;
    long now_nsec;
};

static size_t hash_name(const char *s, size_t n)
{
    size_t h = 1469598103934665603u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211u;
    return h;
}

static struct member *lookup_n(const struct archive_set *set, const char *name, size_t n)
{
    if (!set->nslots)
        return NULL;
    size_t mask = set->nslots - 1;
    for (size_t i = hash_name(name, n) & mask;; i = (i + 1) & mask) {
        size_t k = set->slots[i];
        if (!k)
            return NULL;
        struct member *m = &set->v[k - 1];
        if (strlen(m->name) == n && memcmp(m->name, name, n) == 0)
            return m;
    }
}

static struct member *lookup(const struct archive_set *set, const char *name)
{
    return lookup_n(set, name, strlen(name));
}

static int rehash(struct archive_set *set, size_t nslots)
{
    size_t *slots = calloc(nslots, sizeof *slots);
    if (!slots)
        return -1;
    free(set->slots);
    set->slots = slots;
    set->nslots = nslots;
    for (size_t k = 0; k < set->n; k++) {
        if (set->v[k].superseded)
            continue;
        size_t i = hash_name(set->v[k].name, strlen(set->v[k].name)) & (nslots - 1);
        while (slots[i])
            i = (i + 1) & (nslots - 1);
        slots[i] = k + 1;
    }
    return 0;
}

/* Adds a member; a name already present is superseded (the last one wins,
 * as an extractor overwrites). Returns the new member, or NULL (ENOMEM). */
static struct member *add_member(struct archive_set *set, char *name, bool *duplicate)
{
    if ((set->n + 1) * 2 > set->nslots &&
        rehash(set, set->nslots ? set->nslots * 2 : 512) != 0)
        return NULL;
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 256;
        struct member *v = realloc(set->v, cap * sizeof *v);
        if (!v)
            return NULL;
        set->v = v;
        set->cap = cap;
    }
    size_t mask = set->nslots - 1, len = strlen(name), i;
    *duplicate = false;
    for (i = hash_name(name, len) & mask; set->slots[i]; i = (i + 1) & mask) {
        struct member *old = &set->v[set->slots[i] - 1];
        if (strcmp(old->name, name) == 0) {
            old->superseded = true;
            *duplicate = true;
            break;
        }
    }
    struct member *m = &set->v[set->n++];
    memset(m, 0, sizeof *m);
    m->name = name;
    m->size = -1;
    set->slots[i] = set->n;
    return m;
}

static void free_set(struct archive_set *set)
{
    for (size_t k = 0; k < set->n; k++) {
        free(set->v[k].name);
        free(set->v[k].head);
        free(set->v[k].data);
    }
    free(set->v);
    free(set->slots);
}

/* Normalises a member name: drops leading "./" and "/." components and
 * repeated slashes, and a trailing slash. NULL (errno EPERM) for a name an
 * extractor could be led out of its directory by — absolute, or with a
 * ".." component — and for an empty one (EINVAL); ENOMEM. */
static char *normalise(const char *raw)
{
    if (raw[0] == '/' || raw[0] == '\\') {
        errno = EPERM;
        return NULL;
    }
    size_t n = strlen(raw);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t k = 0;
    const char *p = raw;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            free(out);
            errno = EPERM;
            return NULL;
        }
        if (len > 0 && !(len == 1 && p[0] == '.')) {
            if (k)
                out[k++] = '/';
            memcpy(out + k, p, len);
            k += len;
        }
        p += len;
        if (*p == '/')
            p++;
    }
    out[k] = '\0';
    if (k == 0) {
        free(out);
        errno = EINVAL;
        return NULL;
    }
    return out;
}

/* The last component of NAME and the length of its directory part
 * (without the slash; 0 at the top). */
static const char *base_of(const char *name, size_t *dir_len)
{
    const char *slash = strrchr(name, '/');
    *dir_len = slash ? (size_t)(slash - name) : 0;
    return slash ? slash + 1 : name;
}

/* Whether the directory part (DIR_LEN bytes of NAME) ends in __pycache__. */
static bool dir_is_pycache(const char *name, size_t dir_len)
{
    static const char pc[] = "__pycache__";
    size_t n = sizeof pc - 1;
    return dir_len >= n && memcmp(name + dir_len - n, pc, n) == 0 &&
           (dir_len == n || name[dir_len - n - 1] == '/');
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* Whether a member name matters to a verdict: sources, caches, anything in
 * __pycache__, package markers (links and encrypted data there are errors;
 * elsewhere they are not looked at). */
static bool relevant(const char *name)
{
    size_t dl;
    const char *base = base_of(name, &dl);
    pyc_cache_name cn;
    return ends_with(name, ".py") || ends_with(name, ".so") || dir_is_pycache(name, dl) ||
           strcmp(base, "__pycache__") == 0 ||
           pyc_cache_name_parse(base, false, false, &cn) != PYC_KIND_NONE;
}

/* ---- reading with libarchive --------------------------------------------------------- */

/* Where the archive's bytes come from: a file, or memory (the fuzzer). */
struct origin {
    const char *path;
    const void *mem;
    size_t mem_len;
};

/* Opens PATH for reading without updating its access time where the
 * kernel grants O_NOATIME (the caller's own files; EPERM otherwise, and
 * then the file is opened without it): looking at an archive leaves no
 * trace, as for the files of a tree (src/lib/noatime.c). */
static int open_noatime(const char *path, int flags)
{
    return psys_openat_read(AT_FDCWD, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | flags);
}

/* A reader of O, or NULL with errno and libarchive's message in MSG. *FD
 * gets the file it reads (close_reader closes both), -1 for memory. */
static struct archive *open_reader(const struct origin *o, int *fd, char *msg, size_t cap)
{
    *fd = -1;
    if (o->path) {
        *fd = open_noatime(o->path, 0);
        if (*fd < 0) {
            snprintf(msg, cap, "%s", strerror(errno));
            return NULL;
        }
    }
    struct archive *a = archive_read_new();
    if (!a) {
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        snprintf(msg, cap, "%s", strerror(ENOMEM));
        errno = ENOMEM;
        return NULL;
    }
    archive_read_support_filter_all(a);
    /* Seekable: the central directory is read (sizes, names and times as
     * zipimport and unzip see them), and data in front of the first
     * member (a zipapp's "#!" line) is allowed. */
    archive_read_support_format_zip_seekable(a);
    archive_read_support_format_tar(a);
    int rc = o->path ? archive_read_open_fd(a, *fd, 64 * 1024)
                     : archive_read_open_memory(a, o->mem, o->mem_len);
    if (rc != ARCHIVE_OK) {
        int e = archive_errno(a);
        const char *why = archive_error_string(a);
        snprintf(msg, cap, "%s", why ? why : "not a readable archive");
        archive_read_free(a);
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        errno = e > 0 ? e : EINVAL;
        return NULL;
    }
    return a;
}

static void close_reader(struct archive *a, int fd)
{
    archive_read_free(a);
    if (fd >= 0)
        close(fd);
}

/* Whether the end of the file FD (SIZE bytes) holds a zip's end of central
 * directory record: a zip with data in front of it (a zipapp's "#!" line). */
static bool has_zip_end(int fd, off_t size)
{
    unsigned char tail[65536 + 22];
    size_t n = size < (off_t)sizeof tail ? (size_t)size : sizeof tail;
    if (n < 22 || pread(fd, tail, n, size - (off_t)n) != (ssize_t)n)
        return false;
    for (size_t i = n - 22 + 1; i-- > 0;)
        if (memcmp(tail + i, "PK\5\6", 4) == 0)
            return true;
    return false;
}

int archive_sniff(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISREG(st.st_mode))
        return 0;
    int fd = open_noatime(path, O_NONBLOCK);
    if (fd < 0)
        return -1;
    unsigned char b[512];
    ssize_t n = pread(fd, b, sizeof b, 0);
    if (n < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    int result = 0;
    /* A zip's first local header or its end record (an empty zip), or a
     * tar header: an archive, however damaged the rest (archive_scan then
     * says what is wrong). A cache file or a source never starts so. */
    if ((n >= 4 && (memcmp(b, "PK\3\4", 4) == 0 || memcmp(b, "PK\5\6", 4) == 0)) ||
        (n >= 262 && memcmp(b + 257, "ustar", 5) == 0)) {
        result = 1;
    } else if (n >= 2 && b[0] == '#' && b[1] == '!') {
        /* A script, or a zipapp: a zip behind its "#!" line. */
        result = has_zip_end(fd, st.st_size) ? 1 : 0;
    } else if ((n >= 2 && b[0] == 0x1f && b[1] == 0x8b) || (n >= 3 && memcmp(b, "BZh", 3) == 0) ||
               (n >= 6 && memcmp(b, "\xfd" "7zXZ\0", 6) == 0) ||
               (n >= 4 && memcmp(b, "\x28\xb5\x2f\xfd", 4) == 0)) {
        /* gzip, bzip2, xz, zstd: a tar inside, or a compressed plain file.
         * A stream that fails to decompress is a damaged archive; one that
         * decompresses to something else (a gzip'd source) is no archive. */
        struct archive *a = archive_read_new();
        if (a) {
            archive_read_support_filter_all(a);
            archive_read_support_format_tar(a);
            result = 1;
            if (archive_read_open_fd(a, fd, 64 * 1024) == ARCHIVE_OK) {
                struct archive_entry *e;
                int rc = archive_read_next_header(a, &e);
                const char *why = archive_error_string(a);
                if (rc == ARCHIVE_EOF)
                    result = archive_format(a) != 0;
                else if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN && why &&
                         strstr(why, "Unrecognized archive format"))
                    result = 0;
            } else {
                const char *why = archive_error_string(a);
                result = !(why && strstr(why, "Unrecognized archive format"));
            }
            archive_read_free(a);
        }
    }
    close(fd);
    return result;
}

static uint64_t max_bytes(const archive_options *aopt)
{
    if (aopt && aopt->max_bytes)
        return aopt->max_bytes;
    const char *env = getenv("PYCACHE_ARCHIVE_MAX_BYTES");
    if (env && *env) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(env, &end, 10);
        if (!errno && !*end && v > 0)
            return v;
    }
    return ARCHIVE_DEFAULT_MAX_BYTES;
}

/* Reads up to CAP bytes of the current entry into a malloc'd buffer. *LEN
 * gets the count; sets *TOO_BIG when the entry holds more than CAP. NULL on
 * a read error (errno, and *MSG libarchive's message). */
static unsigned char *read_entry(struct archive *a, size_t cap, size_t *len, bool *too_big,
                                 uint64_t *budget, const char **msg)
{
    size_t alloc = cap < 65536 ? cap + 1 : 65536, n = 0;
    unsigned char *buf = malloc(alloc);
    *too_big = false;
    if (!buf)
        return NULL;
    for (;;) {
        if (n == alloc) {
            if (alloc > cap) {
                *too_big = true;
                break;
            }
            size_t na = alloc * 2 > cap + 1 ? cap + 1 : alloc * 2;
            unsigned char *nb = realloc(buf, na);
            if (!nb) {
                free(buf);
                errno = ENOMEM;
                return NULL;
            }
            buf = nb;
            alloc = na;
        }
        la_ssize_t r = archive_read_data(a, buf + n, alloc - n);
        if (r < 0) {
            int e = archive_errno(a);
            *msg = archive_error_string(a);
            free(buf);
            errno = e > 0 ? e : EIO;
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if ((uint64_t)r > *budget) {
            *budget = 0;
            *too_big = true;
            break;
        }
        *budget -= (uint64_t)r;
        if (n > cap) {
            *too_big = true;
            break;
        }
    }
    *len = n > cap ? cap : n;
    return buf;
}

/* ---- the zip central directory (zipimport's DOS times) ------------------------------ */

static bool origin_read(const struct origin *o, int fd, uint64_t off, void *buf, size_t n)
{
    if (!o->path) {
        if (off > o->mem_len || n > o->mem_len - off)
            return false;
        memcpy(buf, (const unsigned char *)o->mem + off, n);
        return true;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            return false;
        }
        got += (size_t)r;
    }
    return true;
}

static uint16_t le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Fills has_dos / dos_date / dos_time of every member from the central
 * directory, found as zipimport's _read_directory finds it: the end record
 * (searched in the last 64 KiB + 22 bytes, for a trailing comment), whose
 * directory lies just before it (so data prepended to the archive, a
 * zipapp's "#!" line, shifts nothing). Returns 0, or -1 when there is no
 * readable central directory (zipimport: "not a Zip file"). */
static int read_zip_dostimes(const struct origin *o, struct archive_set *set)
{
    int fd = -1;
    uint64_t size;
    if (o->path) {
        fd = open_noatime(o->path, 0);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) {
            if (fd >= 0)
                close(fd);
            return -1;
        }
        size = (uint64_t)st.st_size;
    } else {
        size = o->mem_len;
    }
    int rc = -1;
    unsigned char *tail = NULL, *cd = NULL;
    size_t tail_len = size < 65536 + 22 ? (size_t)size : 65536 + 22;
    if (tail_len < 22)
        goto out;
    tail = malloc(tail_len);
    if (!tail || !origin_read(o, fd, size - tail_len, tail, tail_len))
        goto out;
    size_t end = tail_len - 22 + 1;
    bool found = false;
    while (end-- > 0) {
        if (memcmp(tail + end, "PK\5\6", 4) == 0) {
            found = true;
            break;
        }
    }
    if (!found)
        goto out;
    uint64_t eocd = size - tail_len + end;
    uint32_t cd_size = le32(tail + end + 12);
    uint16_t entries = le16(tail + end + 10);
    if (cd_size > eocd || cd_size > (UINT32_C(1) << 30))
        goto out;
    cd = malloc(cd_size ? cd_size : 1);
    if (!cd || !origin_read(o, fd, eocd - cd_size, cd, cd_size))
        goto out;
    size_t p = 0;
    for (unsigned i = 0; i < entries || p + 46 <= cd_size; i++) {
        if (p + 46 > cd_size || memcmp(cd + p, "PK\1\2", 4) != 0)
            break;
        uint16_t t = le16(cd + p + 12), d = le16(cd + p + 14);
        size_t nlen = le16(cd + p + 28), xlen = le16(cd + p + 30), clen = le16(cd + p + 32);
        if (p + 46 + nlen > cd_size)
            break;
        char *raw = strndup((const char *)cd + p + 46, nlen);
        if (!raw)
            goto out;
        char *name = normalise(raw);
        free(raw);
        if (name) {
            struct member *m = lookup(set, name);
            if (m) {
                m->has_dos = true;
                m->dos_date = d;
                m->dos_time = t;
            }
            free(name);
        }
        p += 46 + nlen + xlen + clen;
    }
    rc = 0;
out:
    free(tail);
    free(cd);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* zipimport's _parse_dostime (3.8+) / parse_dostime (2.7-3.7): the DOS
 * fields as local time through mktime, DST left to mktime (-1). */
static int64_t parse_dostime(uint16_t d, uint16_t t)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = (d >> 9) + 1980 - 1900;
    tm.tm_mon = ((d >> 5) & 0xF) - 1;
    tm.tm_mday = d & 0x1F;
    tm.tm_hour = t >> 11;
    tm.tm_min = (t >> 5) & 0x3F;
    tm.tm_sec = (t & 0x1F) * 2;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm);
}

/* ---- the view the verdict asks ------------------------------------------------------ */

struct view_ctx {
    const struct archive_set *set;
    const char *dir;  /* the source directory: "pkg/sub/" or "" */
    size_t dir_len;
};

static const struct member *view_lookup(const struct view_ctx *vc, const char *name)
{
    size_t n = strlen(name);
    char buf[PATH_MAX];
    if (vc->dir_len + n + 1 > sizeof buf)
        return NULL;
    memcpy(buf, vc->dir, vc->dir_len);
    memcpy(buf + vc->dir_len, name, n + 1);
    return lookup(vc->set, buf);
}

static int member_stat(void *ctx, const char *name, struct stat *st)
{
    const struct view_ctx *vc = ctx;
    const struct member *m = view_lookup(vc, name);
    if (!m) {
        errno = ENOENT;
        return -1;
    }
    memset(st, 0, sizeof *st);
    if (m->type == MEMBER_DIR) {
        st->st_mode = S_IFDIR | 0755;
        return 0;
    }
    if (m->type != MEMBER_FILE) {
        errno = ENOENT;
        return -1;
    }
    const struct archive_set *set = vc->set;
    st->st_mode = S_IFREG | 0644;
    st->st_size = m->size < 0 ? 0 : (off_t)m->size;
    int64_t sec = m->mtime;
    long nsec = m->mtime_nsec;
    if (set->zipimport) {
        sec = m->has_dos ? parse_dostime(m->dos_date, m->dos_time) : 0;
        nsec = 0;
    } else if (set->aopt->mtime == ARCHIVE_MTIME_NOW) {
        sec = set->now;
        nsec = set->now_nsec;
    } else if (set->aopt->mtime == ARCHIVE_MTIME_EPOCH && sec >= set->aopt->epoch) {
        sec = set->aopt->epoch;
        nsec = 0;
    }
    st->st_mtim.tv_sec = (time_t)sec;
    st->st_mtim.tv_nsec = nsec;
    return 0;
}

static int member_hash(void *ctx, const pyc_magic *magic, const char *name, uint8_t out[8])
{
    const struct view_ctx *vc = ctx;
    const struct member *m = view_lookup(vc, name);
    if (!m || m->type != MEMBER_FILE) {
        errno = ENOENT;
        return -1;
    }
    if (!m->data && m->size != 0) {
        errno = m->data_error ? m->data_error : EIO;
        return -1;
    }
    return pyc_source_hash(magic, m->data ? m->data : (const unsigned char *)"", m->data_len,
                           out);
}

/* ---- the scan ---------------------------------------------------------------------- */

struct run {
    struct archive_set set;
    bool all_sources;       /* pass 2 reads the sources of every 3.7+ pyc */
    size_t errors;          /* member errors delivered */
    const struct origin *origin;
    const pyc_verdict_options *vopt;
    const char *only;       /* inspect: one member */
    archive_fn *fn;
    void *ctx;
    int stopped;
    char *pathbuf, *srcbuf;
    size_t pathcap, srccap;
    struct image_set *image; /* the tar is a container image (engine/image.h) */
    image_hooks image_hooks;
    char *image_shown;      /* ARCHIVE@REF of the image judged (an index of
                               several) */
};

static const char *display(struct run *r, char **buf, size_t *cap, const char *member)
{
    size_t a = strlen(r->set.path), m = member ? strlen(member) : 0;
    if (a + m + 2 > *cap) {
        size_t nc = (a + m + 2) * 2;
        char *nb = realloc(*buf, nc);
        if (!nb)
            return r->set.path;
        *buf = nb;
        *cap = nc;
    }
    memcpy(*buf, r->set.path, a);
    if (member) {
        (*buf)[a] = '/';
        memcpy(*buf + a + 1, member, m + 1);
    } else {
        (*buf)[a] = '\0';
    }
    return *buf;
}

static int deliver(struct run *r, archive_item *it)
{
    if (r->stopped)
        return 1;
    it->archive = r->set.path;
    if (r->fn(it, r->ctx) != 0)
        r->stopped = 1;
    return r->stopped;
}

static int member_error(struct run *r, const char *member, int err, const char *op,
                        const char *detail)
{
    /* inspect ARCHIVE MEMBER: the other members' errors are not its
     * business; the archive's own (MEMBER NULL) are. */
    if (r->only && member && strcmp(member, r->only) != 0)
        return 0;
    r->errors++;
    archive_item it = {
        .event = ARCHIVE_ERROR, .member = member,
        .path = display(r, &r->pathbuf, &r->pathcap, member),
        .error = err, .error_op = op, .error_detail = detail, .size = -1,
    };
    return deliver(r, &it);
}

/* Whether head bytes H show a hash-based pyc (3.7+ layout, flags & 1). */
static bool head_is_hash(const struct member *m)
{
    if (!m->head_ok || m->head_len < 16)
        return false;
    const pyc_magic *mg = pyc_magic_lookup(le32(m->head));
    return mg && mg->layout == PYC_LAYOUT_FLAGS && (le32(m->head + 4) & 1);
}

/* The source member a cache member is judged with: DIR is where names are
 * looked up ("pkg/" for pkg/__pycache__/x.pyc and pkg/x.pyc). */
static size_t source_dir_len(const char *name, bool *in_pycache)
{
    size_t dl;
    base_of(name, &dl);
    *in_pycache = dir_is_pycache(name, dl);
    if (*in_pycache) {
        size_t n = dl - strlen("__pycache__");
        return n; /* includes the slash before __pycache__, if any */
    }
    return dl ? dl + 1 : 0;
}

/* Pass 1: every member's metadata; cache members' first bytes. */
static int pass_one(struct run *r, struct archive *a, uint64_t *budget)
{
    struct archive_set *set = &r->set;
    struct archive_entry *e;
    uint64_t cap_total = *budget;
    for (;;) {
        int rc = archive_read_next_header(a, &e);
        /* Decompressed bytes in all (a tar stream decompresses what it
         * skips): a bomb stops here, whatever its members declare. */
        if ((uint64_t)archive_filter_bytes(a, 0) > cap_total || *budget == 0) {
            member_error(r, NULL, 0, "read archive",
                         "decompressed size limit reached (PYCACHE_ARCHIVE_MAX_BYTES)");
            return -1;
        }
        if (rc == ARCHIVE_EOF)
            break;
        if (rc == ARCHIVE_FATAL || rc == ARCHIVE_RETRY) {
            const char *msg = archive_error_string(a);
            member_error(r, NULL, 0, "read archive", msg ? msg : "damaged archive");
            return -1;
        }
        if (archive_format(a) && (archive_format(a) & ARCHIVE_FORMAT_BASE_MASK) ==
                                     ARCHIVE_FORMAT_ZIP)
            set->zip = true;
        const char *raw = archive_entry_pathname(e);
        if (!raw) {
            member_error(r, NULL, 0, "read archive", "a member name cannot be decoded");
            continue;
        }
        char *name = normalise(raw);
        if (!name) {
            if (errno == ENOMEM)
                return -1;
            if (errno == EPERM && member_error(r, raw, 0, "judge member",
                                               "unsafe name (absolute or '..'): an "
                                               "extractor would write outside its "
                                               "directory") != 0)
                return 1;
            continue;
        }
        mode_t type = archive_entry_filetype(e);
        bool link = type == AE_IFLNK || archive_entry_hardlink(e) != NULL;
        if (link) {
            if (relevant(name) &&
                member_error(r, name, 0, "judge member",
                             "a link member: not followed") != 0) {
                free(name);
                return 1;
            }
            free(name);
            continue;
        }
        /* Whiteouts belong to image layers, which this front end does not
         * apply: they are plain members here. */
        bool dup = false;
        struct member *m = add_member(set, name, &dup);
        if (!m) {
            free(name);
            return -1;
        }
        m->type = type == AE_IFDIR ? MEMBER_DIR : type == AE_IFREG ? MEMBER_FILE : MEMBER_OTHER;
        m->size = archive_entry_size_is_set(e) ? (int64_t)archive_entry_size(e) : -1;
        m->mtime = (int64_t)archive_entry_mtime(e);
        m->mtime_nsec = archive_entry_mtime_nsec(e);
        if (dup && m->type == MEMBER_FILE && relevant(m->name) &&
            member_error(r, m->name, 0, "judge member",
                         "duplicate member name: the last one is judged, as an "
                         "extractor overwrites") != 0)
            return 1;
        if (m->type != MEMBER_FILE)
            continue;
        size_t dl;
        const char *base = base_of(m->name, &dl);
        pyc_cache_name cn;
        bool in_pc = dir_is_pycache(m->name, dl);
        m->cache = pyc_cache_name_parse(base, in_pc, false, &cn) != PYC_KIND_NONE || in_pc;
        if (!m->cache)
            continue;
        if (archive_entry_is_data_encrypted(e)) {
            if (member_error(r, m->name, 0, "read member", "encrypted") != 0)
                return 1;
            continue;
        }
        size_t want = r->vopt->deep ? (size_t)ARCHIVE_MAX_MEMBER_BYTES : PYC_HEADER_MAX + 1;
        bool too_big;
        const char *msg = NULL;
        m->head = read_entry(a, want, &m->head_len, &too_big, budget, &msg);
        if (!m->head) {
            if (errno == ENOMEM)
                return -1;
            if (member_error(r, m->name, 0, "read member", msg ? msg : strerror(errno)))
                return 1;
            continue;
        }
        if (r->vopt->deep && too_big) {
            if (member_error(r, m->name, 0, "read member",
                             *budget ? "larger than 256 MiB" : "decompressed size limit "
                                                               "reached") != 0)
                return 1;
            free(m->head);
            m->head = NULL;
            continue;
        }
        m->head_ok = true;
    }
    if ((uint64_t)archive_filter_bytes(a, 0) > cap_total) {
        member_error(r, NULL, 0, "read archive",
                     "decompressed size limit reached (PYCACHE_ARCHIVE_MAX_BYTES)");
        return -1;
    }
    return 0;
}

/* Implicit directories: every parent of a member is a directory (a zip need
 * not list them), unless a member of that name says otherwise. */
static int add_parents(struct archive_set *set)
{
    size_t n = set->n;
    for (size_t k = 0; k < n; k++) {
        if (set->v[k].superseded)
            continue;
        const char *name = set->v[k].name;
        for (const char *s = strchr(name, '/'); s; s = strchr(s + 1, '/')) {
            if (lookup_n(set, name, (size_t)(s - name)))
                continue;
            char *dir = strndup(name, (size_t)(s - name));
            bool dup;
            if (!dir)
                return -1;
            struct member *m = add_member(set, dir, &dup);
            if (!m) {
                free(dir);
                return -1;
            }
            m->type = MEMBER_DIR;
            name = set->v[k].name; /* set->v may have moved */
            s = name + strlen(dir);
        }
    }
    return 0;
}

/* Marks the source members hash-based pycs need (need_data): whether any. */
static bool mark_sources(struct run *r)
{
    struct archive_set *set = &r->set;
    bool any = false;
    for (size_t k = 0; k < set->n; k++) {
        struct member *m = &set->v[k];
        if (!m->cache || m->superseded)
            continue;
        if (!head_is_hash(m)) {
            const pyc_magic *mg = m->head_ok && m->head_len >= 4 ? pyc_magic_lookup(le32(m->head))
                                                                 : NULL;
            if (!r->all_sources || !mg || mg->layout != PYC_LAYOUT_FLAGS)
                continue;
        }
        bool in_pc;
        size_t dl = source_dir_len(m->name, &in_pc);
        size_t bl;
        const char *base = base_of(m->name, &bl);
        pyc_cache_name cn;
        pyc_cache_name_parse(base, in_pc, false, &cn);
        char src[PATH_MAX];
        if (dl + cn.stem_len + 4 > sizeof src)
            continue;
        memcpy(src, m->name, dl);
        memcpy(src + dl, base, cn.stem_len);
        memcpy(src + dl + cn.stem_len, ".py", 4);
        struct member *s = lookup(set, src);
        if (s && s->type == MEMBER_FILE && !s->need_data) {
            s->need_data = true;
            any = true;
        }
    }
    return any;
}

/* Pass 2: the bytes of the source members hash-based pycs need. */
static int pass_two(struct run *r, uint64_t *budget)
{
    struct archive_set *set = &r->set;
    if (!mark_sources(r))
        return 0;
    char msg[256];
    int afd;
    struct archive *a = open_reader(r->origin, &afd, msg, sizeof msg);
    if (!a) {
        member_error(r, NULL, 0, "read archive", msg);
        return -1;
    }
    struct archive_entry *e;
    int rc;
    size_t index = 0;
    while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
        const char *raw = archive_entry_pathname(e);
        char *name = raw ? normalise(raw) : NULL;
        if (!name)
            continue;
        struct member *s = lookup(set, name);
        /* The same member as pass 1 saw: the last of its name. */
        free(name);
        index++;
        if (!s || !s->need_data || s->data || s->data_error ||
            archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e))
            continue;
        if (archive_entry_is_data_encrypted(e)) {
            s->data_error = EACCES;
            continue;
        }
        bool too_big;
        const char *why = NULL;
        s->data = read_entry(a, (size_t)ARCHIVE_MAX_MEMBER_BYTES, &s->data_len, &too_big,
                             budget, &why);
        if (!s->data) {
            s->data_error = errno;
        } else if (too_big) {
            free(s->data);
            s->data = NULL;
            s->data_error = EFBIG;
        }
    }
    close_reader(a, afd);
    (void)index;
    return 0;
}

/* A cache member's name, taken apart: its base name, the length of its
 * source's directory, and the classification of the base. */
struct member_name {
    const char *base;
    size_t dl;
    pyc_cache_name cn;
};

/* Judges the cache member M of R's set into V, against the members beside
 * it as the extracted or zipimport view sees them; N gets its name taken
 * apart. Returns 1 when judged, 0 when its name is no cache name (a
 * foreign member), -1 when the verdict failed (reported). */
static int judge_member(struct run *r, const struct member *m, struct member_name *n,
                        pyc_verdict *v)
{
    struct archive_set *set = &r->set;
    bool in_pc;
    n->dl = source_dir_len(m->name, &in_pc);
    size_t bl;
    n->base = base_of(m->name, &bl);
    if (pyc_cache_name_parse(n->base, in_pc, false, &n->cn) == PYC_KIND_NONE)
        return 0;
    struct view_ctx vc = {set, m->name, n->dl};
    pyc_source_view view = {member_stat, member_hash, &vc, set->zipimport};
    if (pyc_verdict_judge_view(n->base, &n->cn, &view, r->vopt, m->head, m->head_len, v) !=
        0) {
        member_error(r, m->name, errno, "judge member", NULL);
        return -1;
    }
    v->file_size = m->size;
    return 1;
}

static int judge_members(struct run *r)
{
    struct archive_set *set = &r->set;
    for (size_t k = 0; k < set->n && !r->stopped; k++) {
        struct member *m = &set->v[k];
        if (!m->cache || m->superseded || !m->head_ok)
            continue;
        if (r->only && strcmp(r->only, m->name) != 0)
            continue;
        archive_item it = {.member = m->name, .size = m->size, .expect_opt = -1,
                           .layer = m->layer};
        it.path = display(r, &r->pathbuf, &r->pathcap, m->name);
        pyc_verdict v;
        struct member_name nm;
        int judged = judge_member(r, m, &nm, &v);
        if (judged == 0) {
            it.event = ARCHIVE_FOREIGN;
            deliver(r, &it);
            continue;
        }
        if (judged < 0)
            continue;
        it.event = ARCHIVE_CACHE;
        it.verdict = &v;
        if (nm.cn.kind == PYC_KIND_PYCACHE || nm.cn.kind == PYC_KIND_LEGACY) {
            char src[PATH_MAX];
            if (nm.dl + nm.cn.stem_len + 4 <= sizeof src) {
                memcpy(src, m->name, nm.dl);
                memcpy(src + nm.dl, nm.base, nm.cn.stem_len);
                memcpy(src + nm.dl + nm.cn.stem_len, ".py", 4);
                if (v.source_exists)
                    it.source_path = display(r, &r->srcbuf, &r->srccap, src);
            }
        }
        deliver(r, &it);
    }
    return r->stopped;
}

/* --expect: each source member needs a fresh cache for each interpreter and
 * level (extracted: the __pycache__ name cache_from_source gives; zipimport:
 * the legacy NAME.pyc beside it, of that interpreter's magic). */
static int check_expect(struct run *r, const pyc_magic *const *expect, const unsigned *opts,
                        size_t nexpect)
{
    struct archive_set *set = &r->set;
    size_t n = set->n;
    for (size_t k = 0; k < n && !r->stopped; k++) {
        struct member *s = &set->v[k];
        if (s->superseded || s->type != MEMBER_FILE || !ends_with(s->name, ".py") ||
            strlen(s->name) < 4)
            continue;
        size_t dl;
        const char *base = base_of(s->name, &dl);
        if (strlen(base) < 4)
            continue;
        size_t sdl = dl ? dl + 1 : 0;
        for (size_t i = 0; i < nexpect; i++) {
            for (int level = 0; level <= 2; level++) {
                if (!(opts[i] & (1u << level)))
                    continue;
                if (set->zipimport && level > 0)
                    continue;
                char *rel = set->zipimport ? NULL
                                           : pyc_cache_from_source(expect[i], base, level,
                                                                   NULL, NULL);
                char cache[PATH_MAX];
                size_t bl = strlen(base);
                if (set->zipimport) {
                    if (sdl + bl + 2 > sizeof cache)
                        continue;
                    memcpy(cache, s->name, sdl);
                    memcpy(cache + sdl, base, bl);
                    memcpy(cache + sdl + bl, "c", 2);
                } else {
                    if (!rel || sdl + strlen(rel) + 1 > sizeof cache) {
                        free(rel);
                        continue;
                    }
                    memcpy(cache, s->name, sdl);
                    memcpy(cache + sdl, rel, strlen(rel) + 1);
                    free(rel);
                }
                const struct member *c = lookup(set, cache);
                pyc_verdict v;
                bool have = false;
                if (c && c->type == MEMBER_FILE && c->head_ok) {
                    bool in_pc;
                    size_t cdl = source_dir_len(c->name, &in_pc);
                    size_t cbl;
                    const char *cbase = base_of(c->name, &cbl);
                    pyc_cache_name cn;
                    pyc_cache_name_parse(cbase, in_pc, false, &cn);
                    struct view_ctx vc = {set, c->name, cdl};
                    pyc_source_view view = {member_stat, member_hash, &vc, set->zipimport};
                    have = pyc_verdict_judge_view(cbase, &cn, &view, r->vopt, c->head,
                                                  c->head_len, &v) == 0;
                    if (have)
                        v.file_size = c->size;
                }
                bool fresh = have && v.status == PYC_FRESH && v.header_read &&
                             v.header.magic_word == expect[i]->word;
                if (fresh)
                    continue;
                if (r->only && strcmp(r->only, cache) != 0)
                    continue;
                archive_item it = {
                    .event = ARCHIVE_MISSING, .member = cache,
                    .verdict = have ? &v : NULL, .expect = expect[i],
                    .expect_opt = level, .size = -1,
                };
                it.path = display(r, &r->pathbuf, &r->pathcap, cache);
                it.source_path = display(r, &r->srcbuf, &r->srccap, s->name);
                if (deliver(r, &it))
                    return 1;
            }
        }
    }
    return r->stopped;
}

static void run_init(struct run *r, const struct origin *o, const char *shown,
                     const archive_options *aopt, const pyc_verdict_options *vopt,
                     archive_fn *fn, void *ctx)
{
    static const archive_options default_aopt;
    memset(r, 0, sizeof *r);
    r->origin = o;
    r->vopt = vopt;
    r->fn = fn;
    r->ctx = ctx;
    r->set.path = shown;
    r->set.aopt = aopt ? aopt : &default_aopt;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    r->set.now = (int64_t)now.tv_sec;
    r->set.now_nsec = now.tv_nsec;
}

static void run_free(struct run *r)
{
    free_set(&r->set);
    free(r->pathbuf);
    free(r->srcbuf);
    image_free(r->image);
    free(r->image_shown);
}

/* ---- container images (engine/image.c) --------------------------------------------- */

/* The image module asks which files' first bytes to keep: the cache files,
 * as pass_one reads them. */
static size_t image_head_size(void *ctx, const char *name, bool *deep)
{
    struct run *r = ctx;
    size_t dl;
    const char *base = base_of(name, &dl);
    pyc_cache_name cn;
    bool in_pc = dir_is_pycache(name, dl);
    if (pyc_cache_name_parse(base, in_pc, false, &cn) == PYC_KIND_NONE && !in_pc)
        return 0;
    *deep = r->vopt->deep;
    return r->vopt->deep ? (size_t)ARCHIVE_MAX_MEMBER_BYTES + 1 : PYC_HEADER_MAX + 1;
}

static bool image_relevant(void *ctx, const char *name)
{
    (void)ctx;
    return relevant(name);
}

static int image_error(void *ctx, const char *member, int err, const char *op,
                       const char *detail)
{
    struct run *r = ctx;
    /* A blob that cannot be read or verified concerns the whole image,
     * whichever member inspect asked for. */
    if (r->only && strcmp(op, "read image") == 0) {
        const char *only = r->only;
        r->only = NULL;
        int rc = member_error(r, member, err, op, detail);
        r->only = only;
        return rc;
    }
    return member_error(r, member, err, op, detail);
}

/* One path of the image's final file system becomes a member. */
static int add_image_file(void *ctx, const image_file *f)
{
    struct run *r = ctx;
    char *name = strdup(f->name);
    bool dup;
    struct member *m = name ? add_member(&r->set, name, &dup) : NULL;
    if (!m) {
        free(name);
        return -1;
    }
    m->type = f->type == IMAGE_FILE ? MEMBER_FILE : f->type == IMAGE_DIR ? MEMBER_DIR
                                                                        : MEMBER_OTHER;
    m->size = f->size;
    m->mtime = f->mtime;
    m->mtime_nsec = f->mtime_nsec;
    m->layer = f->layer;
    if (m->type != MEMBER_FILE)
        return 0;
    size_t dl;
    const char *base = base_of(m->name, &dl);
    pyc_cache_name cn;
    bool in_pc = dir_is_pycache(m->name, dl);
    m->cache = pyc_cache_name_parse(base, in_pc, false, &cn) != PYC_KIND_NONE || in_pc;
    if (m->cache && f->head_ok) {
        m->head = malloc(f->head_len ? f->head_len : 1);
        if (!m->head)
            return -1;
        memcpy(m->head, f->head, f->head_len);
        m->head_len = f->head_len;
        m->head_ok = true;
    }
    return 0;
}

struct image_reading {
    struct archive_set *set;
    size_t *index;           /* the member of each name asked for */
};

static void got_source(void *ctx, size_t k, unsigned char *data, size_t len, int err)
{
    struct image_reading *ir = ctx;
    struct member *m = &ir->set->v[ir->index[k]];
    m->data = data;
    m->data_len = len;
    m->data_error = data ? 0 : err;
}

/* Judges each image of R's image archive on the file system its layers
 * make: the members are that file system's paths, each with the mtime of
 * the layer that last wrote it; a hash-based pyc's source is read from
 * that layer. One image is shown as SHOWN/path; each image of an index of
 * several as SHOWN@DIGEST/path. Returns 0, 1 (stopped), -1 (an image
 * could not be judged: reported). */
static int scan_images(struct run *r, const char *shown, uint64_t *budget,
                       const pyc_magic *const *expect, const unsigned *expect_opts,
                       size_t nexpect)
{
    if (r->set.aopt->use == ARCHIVE_USE_ZIPIMPORT) {
        member_error(r, NULL, 0, "judge archive",
                     "--zipimport needs a zip archive (zipimport reads no tar)");
        return -1;
    }
    size_t nimages = image_count(r->image);
    int rc = 0;
    for (size_t i = 0; i < nimages && !r->stopped; i++) {
        free_set(&r->set);
        r->set.v = NULL;
        r->set.slots = NULL;
        r->set.n = r->set.cap = r->set.nslots = 0;
        if (nimages > 1) {
            const char *ref = image_ref(r->image, i);
            free(r->image_shown);
            r->image_shown = malloc(strlen(shown) + strlen(ref) + 2);
            if (!r->image_shown) {
                member_error(r, NULL, ENOMEM, "read image", NULL);
                return -1;
            }
            sprintf(r->image_shown, "%s@%s", shown, ref);
            r->set.path = r->image_shown;
        }
        if (image_files(r->image, i, add_image_file, r) != 0 || add_parents(&r->set) != 0) {
            rc = -1;
            continue;
        }
        if (mark_sources(r)) {
            size_t n = 0;
            for (size_t k = 0; k < r->set.n; k++)
                n += r->set.v[k].need_data;
            const char **names = malloc(n * sizeof *names);
            size_t *index = malloc(n * sizeof *index);
            if (!names || !index) {
                free(names);
                free(index);
                member_error(r, NULL, ENOMEM, "read image", NULL);
                return -1;
            }
            n = 0;
            for (size_t k = 0; k < r->set.n; k++) {
                if (r->set.v[k].need_data) {
                    names[n] = r->set.v[k].name;
                    index[n++] = k;
                }
            }
            struct image_reading ir = {&r->set, index};
            if (image_read(r->image, i, names, n, (size_t)ARCHIVE_MAX_MEMBER_BYTES, budget,
                           got_source, &ir) != 0)
                rc = -1;
            free(names);
            free(index);
        }
        judge_members(r);
        if (!r->stopped && nexpect)
            check_expect(r, expect, expect_opts, nexpect);
    }
    r->set.path = shown;
    return r->stopped ? 1 : rc;
}

/* Reads the archive's members (passes 1 and 2) and settles how it is used.
 * 0, or -1 after delivering why (1: the callback stopped). */
static int prepare(struct run *r, const struct origin *o, const char *shown, uint64_t *budget)
{
    char msg[256];
    int afd;
    struct archive *a = open_reader(o, &afd, msg, sizeof msg);
    if (!a) {
        member_error(r, NULL, 0, "read archive", msg);
        return -1;
    }
    int rc = pass_one(r, a, budget);
    close_reader(a, afd);
    if (rc != 0)
        return rc;
    /* A tar holding an OCI image layout or a docker-save manifest.json is
     * a container image: judged image by image (scan_images). */
    if (!r->set.zip && (lookup(&r->set, "oci-layout") || lookup(&r->set, "manifest.json"))) {
        r->image_hooks = (image_hooks){r, image_head_size, image_relevant, image_error};
        int ir = image_open(o->path, o->mem, o->mem_len, budget, &r->image_hooks, &r->image);
        if (ir != 0)
            return ir < 0 ? -1 : 0;
    }
    if (add_parents(&r->set) != 0) {
        member_error(r, NULL, ENOMEM, "read archive", NULL);
        return -1;
    }
    archive_use use = r->set.aopt->use;
    if (use == ARCHIVE_USE_AUTO && r->set.zip) {
        size_t n = strlen(shown);
        bool pyz = (n > 4 && strcmp(shown + n - 4, ".pyz") == 0) ||
                   (n > 5 && strcmp(shown + n - 5, ".pyzw") == 0);
        unsigned char two[2] = {0, 0};
        if (!pyz && o->path) {
            int fd = open_noatime(o->path, 0);
            if (fd >= 0) {
                pyz = pread(fd, two, 2, 0) == 2 && two[0] == '#' && two[1] == '!';
                close(fd);
            }
        }
        use = pyz ? ARCHIVE_USE_ZIPIMPORT : ARCHIVE_USE_EXTRACTED;
    }
    if (use == ARCHIVE_USE_ZIPIMPORT) {
        if (!r->set.zip) {
            member_error(r, NULL, 0, "judge archive",
                         "--zipimport needs a zip archive (zipimport reads no tar)");
            return -1;
        }
        r->set.zipimport = true;
        if (read_zip_dostimes(o, &r->set) != 0) {
            member_error(r, NULL, 0, "read archive",
                         "no readable zip central directory (zipimport: not a Zip file)");
            return -1;
        }
    }
    return pass_two(r, budget) != 0 ? -1 : 0;
}

static int scan_origin(const struct origin *o, const char *shown, const archive_options *aopt,
                       const pyc_verdict_options *vopt, const pyc_magic *const *expect,
                       const unsigned *expect_opts, size_t nexpect, const char *only,
                       archive_fn *fn, void *ctx)
{
    struct run r;
    run_init(&r, o, shown, aopt, vopt, fn, ctx);
    r.only = only;
    uint64_t budget = max_bytes(aopt);
    int rc = prepare(&r, o, shown, &budget);
    if (rc != 0)
        goto out;
    if (r.image) {
        rc = scan_images(&r, shown, &budget, expect, expect_opts, nexpect);
        goto out;
    }
    judge_members(&r);
    if (!r.stopped && nexpect)
        check_expect(&r, expect, expect_opts, nexpect);
    rc = r.stopped ? 1 : 0;
out:
    run_free(&r);
    return rc;
}

int archive_scan(const char *path, const archive_options *aopt,
                 const pyc_verdict_options *vopt, const pyc_magic *const *expect,
                 const unsigned *expect_opts, size_t nexpect, const char *member,
                 archive_fn *fn, void *ctx)
{
    struct origin o = {path, NULL, 0};
    return scan_origin(&o, path, aopt, vopt, expect, expect_opts, nexpect, member, fn, ctx);
}

int archive_scan_memory(const void *data, size_t len, const char *shown,
                        const archive_options *aopt, const pyc_verdict_options *vopt,
                        archive_fn *fn, void *ctx)
{
    struct origin o = {NULL, data, len};
    return scan_origin(&o, shown, aopt, vopt, NULL, NULL, 0, NULL, fn, ctx);
}

/* ---- fixing: a new archive with converted headers ----------------------------------- */

/* RECORD's digest form (PEP 376 / the wheel spec): urlsafe base64, no '='. */
static size_t b64url(const unsigned char *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[k++] = t[v >> 18 & 63];
        out[k++] = t[v >> 12 & 63];
        if (i + 1 < n)
            out[k++] = t[v >> 6 & 63];
        if (i + 2 < n)
            out[k++] = t[v & 63];
    }
    out[k] = '\0';
    return k;
}

/* Whether NAME is a wheel's RECORD: "NAME-VER.dist-info/RECORD" at the top. */
static bool is_record(const char *name)
{
    const char *slash = strchr(name, '/');
    return slash && strcmp(slash + 1, "RECORD") == 0 && slash - name > 10 &&
           memcmp(slash - 10, ".dist-info", 10) == 0;
}

/* The RECORD DATA (LEN bytes) with the line of every converted member
 * rewritten: "path,sha256=DIGEST,SIZE". Returns a malloc'd buffer (*OUT_LEN
 * bytes), or NULL: ENOMEM, or EINVAL with *WHY when a converted member is
 * listed before it was written (its digest is not known yet). */
static char *rewrite_record(const struct archive_set *set, const unsigned char *data,
                            size_t len, size_t *out_len, const char **why)
{
    size_t cap = len + 64 * 16 + 1024, k = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t i = 0;
    while (i < len) {
        const unsigned char *nl = memchr(data + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - data) : len;
        size_t line_len = end - i;
        /* The path is everything before the second-to-last comma (a path
         * with a comma is quoted: such a line is kept as it is). */
        const unsigned char *line = data + i;
        const unsigned char *c2 = NULL, *c1 = NULL;
        for (size_t j = line_len; j-- > 0;) {
            if (line[j] == ',') {
                if (!c2)
                    c2 = line + j;
                else {
                    c1 = line + j;
                    break;
                }
            }
        }
        const struct member *m = NULL;
        if (c1 && line[0] != '"') {
            char path[PATH_MAX];
            size_t pl = (size_t)(c1 - line);
            if (pl < sizeof path) {
                memcpy(path, line, pl);
                path[pl] = '\0';
                m = lookup(set, path);
            }
        }
        if (k + line_len + 200 > cap) {
            cap = (cap + line_len + 200) * 2;
            char *n2 = realloc(out, cap);
            if (!n2) {
                free(out);
                return NULL;
            }
            out = n2;
        }
        if (m && m->convert) {
            if (!m->written) {
                free(out);
                *why = "RECORD lists a converted member that comes after it";
                errno = EINVAL;
                return NULL;
            }
            size_t pl = (size_t)(c1 - line);
            memcpy(out + k, line, pl);
            k += pl;
            k += (size_t)sprintf(out + k, ",sha256=");
            k += b64url(m->digest, 32, out + k);
            k += (size_t)sprintf(out + k, ",%lld", (long long)m->written_size);
        } else {
            memcpy(out + k, line, line_len);
            k += line_len;
        }
        if (nl)
            out[k++] = '\n';
        i = nl ? end + 1 : len;
    }
    *out_len = k;
    return out;
}

/* Decides, for each fresh 3.7+ cache member not in mode TO, its new header,
 * and tells the callback what will be done with each cache member. */
static int plan_conversions(struct run *r, pyc_mode to, bool ignore_mtime, size_t *nconvert)
{
    struct archive_set *set = &r->set;
    *nconvert = 0;
    for (size_t k = 0; k < set->n && !r->stopped; k++) {
        struct member *m = &set->v[k];
        if (!m->cache || m->superseded || !m->head_ok)
            continue;
        pyc_verdict v;
        struct member_name nm;
        if (judge_member(r, m, &nm, &v) != 1)
            continue;
        struct view_ctx vc = {set, m->name, nm.dl}; /* the source member's stat */
        const char *action;
        const pyc_magic *judge = v.judge;
        char src[PATH_MAX];
        bool have_src = nm.dl + nm.cn.stem_len + 4 <= sizeof src;
        if (have_src) {
            memcpy(src, m->name, nm.dl);
            memcpy(src + nm.dl, nm.base, nm.cn.stem_len);
            memcpy(src + nm.dl + nm.cn.stem_len, ".py", 4);
        }
        bool normalised = false;
        if (ignore_mtime && v.status == PYC_STALE && v.reason == PYC_REASON_MTIME &&
            v.header.mode == PYC_MODE_TIMESTAMP && judge && judge->layout == PYC_LAYOUT_FLAGS &&
            have_src) {
            /* Stale by the archive's mtime alone (a packager normalised
             * it): taken as built from this source when the size it
             * recorded is the source member's. */
            struct stat st;
            normalised = member_stat(&vc, src + nm.dl, &st) == 0 &&
                         (uint32_t)((uint64_t)st.st_size & 0xFFFFFFFFu) == v.header.source_size;
        }
        if (v.status != PYC_FRESH && !normalised) {
            action = "not-fresh";
        } else if (!judge || judge->layout != PYC_LAYOUT_FLAGS ||
                   judge->implementation != PYC_IMPL_CPYTHON || m->head_len < 16) {
            action = "not-convertible";
        } else if (v.header.mode == to) {
            action = "already";
        } else {
            /* The header py_compile would write in mode TO: the same body
             * (PEP 552), flags and hash or mtime and size of the source
             * member as the verdict saw it. */
            pyc_header h = v.header;
            h.mode = to;
            bool ok = have_src;
            if (ok && to == PYC_MODE_TIMESTAMP) {
                struct stat st;
                ok = member_stat(&vc, src + nm.dl, &st) == 0;
                if (ok) {
                    pyc_stamp stamp;
                    pyc_stamp_from_stat(judge, &st, &stamp);
                    h.mtime = stamp.mtime;
                    h.source_size = stamp.size;
                }
            } else if (ok) {
                ok = member_hash(&vc, judge, src + nm.dl, h.source_hash) == 0;
            }
            if (!ok) {
                member_error(r, m->name, errno, "convert member", "its source cannot be read");
                continue;
            }
            m->new_head_len = pyc_header_encode(&h, m->new_head);
            m->convert = true;
            (*nconvert)++;
            action = "converted";
        }
        archive_item it = {.member = m->name, .size = m->size, .expect_opt = -1,
                           .event = ARCHIVE_CACHE, .verdict = &v, .action = action};
        it.path = display(r, &r->pathbuf, &r->pathcap, m->name);
        if (v.source_exists && have_src)
            it.source_path = display(r, &r->srcbuf, &r->srccap, src);
        deliver(r, &it);
    }
    return r->stopped;
}

/* Copies the current entry's data from A to W, replacing the header of a
 * converted member and the lines of RECORD. 0, or -1 with *WHY. */
static int copy_entry(struct run *r, struct archive *a, struct archive *w,
                      struct archive_entry *e, struct member *m, uint64_t *budget,
                      const char **why)
{
    bool rewrite = m && (m->convert || (r->set.zip && is_record(m->name)));
    if (!rewrite) {
        if (archive_write_header(w, e) != ARCHIVE_OK) {
            *why = archive_error_string(w);
            return -1;
        }
        unsigned char buf[65536];
        for (;;) {
            la_ssize_t n = archive_read_data(a, buf, sizeof buf);
            if (n < 0) {
                *why = archive_error_string(a);
                return -1;
            }
            if (n == 0)
                break;
            if ((uint64_t)n > *budget) {
                *why = "decompressed size limit reached (PYCACHE_ARCHIVE_MAX_BYTES)";
                return -1;
            }
            *budget -= (uint64_t)n;
            if (archive_write_data(w, buf, (size_t)n) != n) {
                *why = archive_error_string(w);
                return -1;
            }
        }
        return 0;
    }
    size_t len;
    bool too_big;
    unsigned char *data = read_entry(a, (size_t)ARCHIVE_MAX_MEMBER_BYTES, &len, &too_big,
                                     budget, why);
    if (!data || too_big) {
        if (data)
            *why = "member larger than 256 MiB";
        free(data);
        return -1;
    }
    unsigned char *out = data;
    size_t out_len = len;
    char *record = NULL;
    if (m->convert) {
        if (len < m->new_head_len) {
            free(data);
            *why = "member shorter than its header";
            return -1;
        }
        memcpy(data, m->new_head, m->new_head_len);
        struct sha256_ctx c; /* nettle: libarchive's own hash library */
        sha256_init(&c);
        sha256_update(&c, len, data);
        sha256_digest(&c, sizeof m->digest, m->digest);
        m->written_size = (int64_t)len;
        m->written = true;
    } else {
        record = rewrite_record(&r->set, data, len, &out_len, why);
        if (!record) {
            free(data);
            if (!*why)
                *why = strerror(errno);
            return -1;
        }
        out = (unsigned char *)record;
    }
    archive_entry_set_size(e, (la_int64_t)out_len);
    int rc = 0;
    if (archive_write_header(w, e) != ARCHIVE_OK ||
        archive_write_data(w, out, out_len) != (la_ssize_t)out_len) {
        *why = archive_error_string(w);
        rc = -1;
    }
    free(record);
    free(data);
    return rc;
}

/* The rewrite pass: every member of the original, in its order, with its
 * name, mode and mtime, into a temporary file beside OUTPUT, renamed over
 * OUTPUT once complete. */
static int rewrite(struct run *r, const char *output, uint64_t *budget)
{
    char msg[256];
    const char *why = NULL;
    int afd;
    struct archive *a = open_reader(r->origin, &afd, msg, sizeof msg);
    if (!a) {
        member_error(r, NULL, 0, "read archive", msg);
        return -1;
    }
    size_t olen = strlen(output);
    char *tmp = malloc(olen + 16);
    struct archive *w = NULL;
    int fd = -1, rc = -1;
    if (!tmp)
        goto out;
    memcpy(tmp, output, olen);
    memcpy(tmp + olen, ".tmp.XXXXXX", 12);
    fd = mkstemp(tmp);
    if (fd < 0) {
        member_error(r, NULL, errno, "create", NULL);
        goto out;
    }
    struct archive_entry *e;
    int hr = archive_read_next_header(a, &e);
    if (hr != ARCHIVE_OK && hr != ARCHIVE_WARN && hr != ARCHIVE_EOF) {
        why = archive_error_string(a);
        goto fail;
    }
    w = archive_write_new();
    if (!w)
        goto fail;
    if (r->set.zip) {
        archive_write_set_format_zip(w);
    } else {
        /* The same tar dialect, and the same compression. */
        if (archive_write_set_format(w, archive_format(a)) != ARCHIVE_OK) {
            why = archive_error_string(w);
            goto fail;
        }
        for (int i = archive_filter_count(a) - 1; i >= 0; i--) {
            int code = archive_filter_code(a, i);
            if (code != ARCHIVE_FILTER_NONE && archive_write_add_filter(w, code) != ARCHIVE_OK) {
                why = archive_error_string(w);
                goto fail;
            }
        }
    }
    if (archive_write_open_fd(w, fd) != ARCHIVE_OK) {
        why = archive_error_string(w);
        goto fail;
    }
    while (hr == ARCHIVE_OK || hr == ARCHIVE_WARN) {
        const char *raw = archive_entry_pathname(e);
        char *name = raw ? normalise(raw) : NULL;
        struct member *m = name ? lookup(&r->set, name) : NULL;
        free(name);
        if (m && archive_entry_filetype(e) != AE_IFREG)
            m = NULL;
        if (copy_entry(r, a, w, e, m, budget, &why) != 0)
            goto fail;
        hr = archive_read_next_header(a, &e);
    }
    if (hr != ARCHIVE_EOF) {
        why = archive_error_string(a);
        goto fail;
    }
    if (archive_write_close(w) != ARCHIVE_OK) {
        why = archive_error_string(w);
        goto fail;
    }
    struct stat st;
    if ((r->origin->path && stat(r->origin->path, &st) == 0 &&
         fchmod(fd, st.st_mode & 07777) != 0) ||
        fsync(fd) != 0 || rename(tmp, output) != 0) {
        member_error(r, NULL, errno, "write", NULL);
        goto cleanup;
    }
    rc = 0;
    goto out;
fail:
    member_error(r, NULL, 0, "write new archive", why ? why : "out of memory");
cleanup:
    unlink(tmp);
out:
    if (w)
        archive_write_free(w);
    if (fd >= 0)
        close(fd);
    close_reader(a, afd);
    free(tmp);
    return rc;
}

int archive_convert(const char *path, const char *output, pyc_mode to,
                    const archive_options *aopt, const pyc_verdict_options *vopt,
                    bool ignore_mtime, bool dry_run, archive_fn *fn, void *ctx)
{
    struct origin o = {path, NULL, 0};
    struct run r;
    run_init(&r, &o, path, aopt, vopt, fn, ctx);
    r.all_sources = to != PYC_MODE_TIMESTAMP;
    uint64_t budget = max_bytes(aopt);
    int rc = prepare(&r, &o, path, &budget);
    if (rc != 0)
        goto out;
    rc = -1;
    if (r.image) {
        member_error(&r, NULL, EOPNOTSUPP, "convert archive",
                     "a container image is read-only to pycache (check, stats and inspect "
                     "judge it): fix the image's build instead");
        goto out;
    }
    if (r.errors) {
        /* An archive with unsafe members is not rewritten at all. */
        member_error(&r, NULL, 0, "convert archive",
                     "it has members pycache cannot vouch for: nothing written");
        goto out;
    }
    if (r.set.zip) {
        int fd = open_noatime(path, 0);
        unsigned char two[2] = {0, 0};
        bool prefixed = fd >= 0 && pread(fd, two, 2, 0) == 2 && memcmp(two, "PK", 2) != 0;
        if (fd >= 0)
            close(fd);
        if (prefixed) {
            member_error(&r, NULL, 0, "convert archive",
                         "data before the zip (a zipapp's #! line) is not rewritten yet");
            goto out;
        }
    }
    size_t nconvert;
    if (plan_conversions(&r, to, ignore_mtime, &nconvert) != 0) {
        rc = 1;
        goto out;
    }
    if (r.errors) {
        member_error(&r, NULL, 0, "convert archive", "nothing written");
        goto out;
    }
    if (dry_run) {
        rc = 0;
        goto out;
    }
    budget = max_bytes(aopt);
    rc = rewrite(&r, output, &budget);
out:
    run_free(&r);
    return rc;
}

#else /* !PYC_HAVE_LIBARCHIVE */

/* A build without libarchive (the static musl binary: musl-gcc sees only
 * musl's headers): archives are still recognised by their first bytes, so
 * a zip, wheel or tarball given as a PATH is refused with a message and
 * exit status 3, never taken for a plain file with no cache in it. */

int archive_sniff(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISREG(st.st_mode))
        return 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -1;
    unsigned char b[512];
    ssize_t n = pread(fd, b, sizeof b, 0);
    int e = errno;
    close(fd);
    if (n < 0) {
        errno = e;
        return -1;
    }
    return (n >= 4 && (memcmp(b, "PK\3\4", 4) == 0 || memcmp(b, "PK\5\6", 4) == 0)) ||
           (n >= 262 && memcmp(b + 257, "ustar", 5) == 0);
}

static int unsupported(const char *path, archive_fn *fn, void *ctx)
{
    archive_item item = {
        .event = ARCHIVE_ERROR, .path = path, .archive = path, .size = -1,
        .error = ENOTSUP, .error_op = "read",
        .error_detail = "this build of pycache reads no archives (built without libarchive)",
    };
    fn(&item, ctx);
    return -1;
}

int archive_scan(const char *path, const archive_options *aopt,
                 const pyc_verdict_options *vopt, const pyc_magic *const *expect,
                 const unsigned *expect_opts, size_t nexpect, const char *member,
                 archive_fn *fn, void *ctx)
{
    return unsupported(path, fn, ctx);
}

int archive_scan_memory(const void *data, size_t len, const char *shown,
                        const archive_options *aopt, const pyc_verdict_options *vopt,
                        archive_fn *fn, void *ctx)
{
    return unsupported(shown, fn, ctx);
}

int archive_convert(const char *path, const char *output, pyc_mode to,
                    const archive_options *aopt, const pyc_verdict_options *vopt,
                    bool ignore_mtime, bool dry_run, archive_fn *fn, void *ctx)
{
    return unsupported(path, fn, ctx);
}

#endif /* PYC_HAVE_LIBARCHIVE */
