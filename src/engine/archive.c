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
#include <stdbool.h>
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
#include "engine/archive_lib.h"
#include "engine/convert.h"
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

/* Whether PATH is a directory holding an OCI image layout: recognised by
 * content (image-spec image-layout.md), an "oci-layout" file that names an
 * imageLayoutVersion, and an index.json. */
static bool layout_dir(const char *path)
{
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return false;
    struct stat st;
    bool ok = fstatat(dfd, "index.json", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
    int fd = ok ? openat(dfd, "oci-layout", O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK) : -1;
    char buf[4096];
    ssize_t n = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)
                    ? read(fd, buf, sizeof buf - 1)
                    : -1;
    if (fd >= 0)
        close(fd);
    close(dfd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return strstr(buf, "\"imageLayoutVersion\"") != NULL;
}

#if PYC_HAVE_LIBARCHIVE

/* ---- members ------------------------------------------------------------------------ */

enum member_type { MEMBER_FILE = 1, MEMBER_DIR, MEMBER_OTHER };

/* What archive_fix's rewrite does with a member. */
enum member_plan {
    PLAN_KEEP = 0,  /* copied as it is */
    PLAN_HEAD,      /* its first new_head_len bytes replaced (convert) */
    PLAN_DROP,      /* left out (clean, prune) */
    PLAN_REPLACE,   /* its bytes replaced by new_data (compile, normalize) */
};

struct member {
    char *name;              /* normalised: no "./", no "//", no trailing '/' */
    enum member_type type;
    int64_t size;            /* uncompressed, -1 unknown */
    int64_t mtime;           /* seconds, as recorded */
    long mtime_nsec;
    bool has_dos;            /* zip: DOS date/time from the central directory */
    uint16_t dos_date, dos_time;
    bool zi_size_ff;         /* zip: the directory's 32-bit size is 0xFFFFFFFF
                                (the true one in a zip64 extra, which only
                                3.13's zipimport reads) */
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
    bool implicit;           /* a parent directory no member names */
    enum member_plan plan;   /* archive_fix */
    bool holds;              /* archive_fix: a directory something kept is in */
    unsigned char new_head[PYC_HEADER_MAX]; /* PLAN_HEAD */
    size_t new_head_len;
    unsigned char *new_data; /* PLAN_REPLACE, and an added file's bytes */
    size_t new_len;
    bool added;              /* archive_fix: not in the archive, written
                                after the member AFTER (its source) */
    size_t after;
    size_t add_first, add_count; /* a source: its added members */
    bool written;            /* archive_fix: written out already */
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
    unsigned zi_unreadable;  /* --zipimport: 1 << ZI_* of each generation of
                                zipimport that cannot open the archive */
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
        free(set->v[k].new_data);
    }
    free(set->v);
    free(set->slots);
}

/* Normalises a member name: drops leading "./" and "/." components and
 * repeated slashes, and a trailing slash. NULL (errno EPERM) for a name an
 * extractor could be led out of its directory by — absolute, or with a
 * ".." component — and for an empty one (EINVAL); ENOMEM. (archive.h:
 * image.c applies the same rule to the members of image layers.) */
char *archive_member_name(const char *raw)
{
    if (raw[0] == '/') {
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

/* A zip or tar member's name: archive_member_name, and a name starting
 * with a backslash is absolute too (a zip made on Windows). */
static char *normalise(const char *raw)
{
    if (raw[0] == '\\') {
        errno = EPERM;
        return NULL;
    }
    return archive_member_name(raw);
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
    if (S_ISDIR(st.st_mode))
        return layout_dir(path);
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
         * decompresses to something else (a gzip'd source) is no archive.
         * Without libarchive (archive_lib.h) it cannot be told: an archive,
         * whose scan then says what is missing. */
        struct archive *a = archive_lib_load(NULL, 0) == 0 ? archive_read_new() : NULL;
        if (!a && archive_lib_load(NULL, 0) != 0)
            result = 1;
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

/* The current entry whole, for a rewrite that replaces it (at most
 * ARCHIVE_MAX_MEMBER_BYTES); NULL with *WHY set when it cannot be read or
 * is larger. */
static unsigned char *read_whole_member(struct archive *a, size_t *len, uint64_t *budget,
                                        const char **why)
{
    bool too_big;
    unsigned char *data =
        read_entry(a, (size_t)ARCHIVE_MAX_MEMBER_BYTES, len, &too_big, budget, why);
    if (data && too_big) {
        *why = "member larger than 256 MiB";
        free(data);
        return NULL;
    }
    return data;
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

static uint64_t le64(const unsigned char *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* The zip end-of-central-directory record (APPNOTE.TXT 4.3.16) in TAIL,
 * the last TAIL_LEN bytes of the file: the last "PK\5\6" whose 22 bytes
 * and comment fit before the end. True with its offset in *AT. */
static bool find_end_record(const unsigned char *tail, size_t tail_len, size_t *at)
{
    if (tail_len < 22)
        return false;
    for (size_t end = tail_len - 22 + 1; end-- > 0;) {
        if (memcmp(tail + end, "PK\5\6", 4) == 0 &&
            end + 22 + (size_t)le16(tail + end + 20) <= tail_len) {
            *at = end;
            return true;
        }
    }
    return false;
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
    size_t end;
    bool found = find_end_record(tail, tail_len, &end);
    if (!found)
        goto out;
    uint64_t eocd = size - tail_len + end;
    uint64_t cd_size = le32(tail + end + 12);
    uint64_t entries = le16(tail + end + 10);
    /* A zip64 end record right before the locator and the end record
     * (76 bytes back): its directory size is the true one, and the
     * directory ends where it starts (3.13's _read_directory; no older
     * zipimport opens such an archive: zipimport_opens). */
    unsigned char rec64[56];
    if (eocd >= 76 && origin_read(o, fd, eocd - 76, rec64, sizeof rec64) &&
        memcmp(rec64, "PK\6\6", 4) == 0) {
        eocd -= 76;
        cd_size = le64(rec64 + 40);
        entries = le64(rec64 + 24);
    }
    if (cd_size > eocd || cd_size > (UINT32_C(1) << 30))
        goto out;
    cd = malloc(cd_size ? (size_t)cd_size : 1);
    if (!cd || !origin_read(o, fd, eocd - cd_size, cd, (size_t)cd_size))
        goto out;
    size_t p = 0;
    for (uint64_t i = 0; i < entries || p + 46 <= cd_size; i++) {
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
                m->zi_size_ff = le32(cd + p + 24) == 0xFFFFFFFFu;
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

/* ---- which zipimport opens the archive at all ---------------------------------------- */

/* zipimport reads an archive's directory once, when the archive is first
 * met on sys.path (zipimporter.__init__ -> _read_directory); when that
 * raises, the path entry is skipped and nothing in the archive is ever
 * imported. Three generations of _read_directory differ in what they
 * open, each checked against the interpreters (test_archive.py):
 *   ZI_C   2.7-3.7 (Modules/zipimport.c read_directory): the end record
 *          must be the file's last 22 bytes (a trailing comment: "not a Zip
 *          file").
 *   ZI_PY  3.8-3.12 (Lib/zipimport.py): the last 22 bytes, else the last
 *          "PK\5\6" in the final 64 KiB + 22 (data.rfind), whose 22 bytes
 *          must be there ("corrupt Zip file").
 *   ZI_64  3.13+: the last "PK\5\6" in the final 64 KiB + 98 bytes; a zip64
 *          end record ("PK\6\6") exactly 76 bytes before it supplies the
 *          directory's size, offset and count; entries' 0xFFFFFFFF fields
 *          are read from their zip64 extra; the count must match.
 * Then, all three: the directory must fit before the end record ("bad
 * central directory size / offset", a negative arc_offset) and no entry's
 * local header offset may pass the directory's ("bad local header
 * offset"); an entry cut short ends the read with an error (EOFError,
 * "can't read Zip file"). Before 3.13 a zip64 directory's 32-bit fields
 * hold 0xFFFFFFFF, which those checks refuse. */
enum { ZI_C, ZI_PY, ZI_64, ZI_ERAS };

static int zipimport_era(const pyc_magic *m)
{
    if (m->major < 3 || (m->major == 3 && m->minor <= 7))
        return ZI_C;
    return m->major == 3 && m->minor <= 12 ? ZI_PY : ZI_64;
}

/* The last "PK" SIG2 SIG3 in BUF (LEN bytes), as bytes.rfind; -1 if none. */
static long rfind_sig(const unsigned char *buf, size_t len, unsigned char c2, unsigned char c3)
{
    for (size_t i = len >= 4 ? len - 4 + 1 : 0; i-- > 0;)
        if (buf[i] == 'P' && buf[i + 1] == 'K' && buf[i + 2] == c2 && buf[i + 3] == c3)
            return (long)i;
    return -1;
}

/* How many names _read_directory of ERA finds in the archive O (SIZE
 * bytes, FD when a file), or -1 when it raises. Reads the end of the file
 * and the directory's entries. Zero names is what a misplaced directory
 * gives: before 3.13, a zip64 end record between the directory and the end
 * record shifts where the directory is looked for by its 76 bytes, and the
 * first entry is not found there. */
static long zipimport_names(const struct origin *o, int fd, uint64_t size, int era)
{
    enum { COMMENT = 65535, EOCD = 22, EOCD64 = 56, LOC64 = 20 };
    size_t want = era == ZI_64 ? COMMENT + EOCD + EOCD64 + LOC64 : COMMENT + EOCD;
    size_t tail_len = size < want ? (size_t)size : want;
    unsigned char *tail = malloc(tail_len ? tail_len : 1);
    unsigned char *rec = NULL;
    long names = -1;
    if (!tail || size < EOCD || !origin_read(o, fd, size - tail_len, tail, tail_len))
        goto out;
    uint64_t hp, cd_size, cd_off, count = 0;
    const unsigned char *end = tail + tail_len - EOCD; /* the last 22 bytes */
    if (era != ZI_64 && memcmp(end, "PK\5\6", 4) == 0) {
        hp = size - EOCD;
    } else if (era == ZI_C) {
        goto out; /* "not a Zip file" */
    } else {
        long pos = rfind_sig(tail, tail_len, 5, 6);
        if (pos < 0 || (size_t)pos + EOCD > tail_len)
            goto out; /* "not a Zip file" / "corrupt Zip file" */
        long pos64 = era == ZI_64 ? rfind_sig(tail, tail_len, 6, 6) : -1;
        if (pos64 >= 0 && pos64 + EOCD64 + LOC64 == pos) {
            end = tail + pos64;
            hp = size - tail_len + (uint64_t)pos64;
            cd_size = le64(end + 40);
            cd_off = le64(end + 48);
            count = le64(end + 24);
            goto located;
        }
        end = tail + pos;
        hp = size - tail_len + (uint64_t)pos;
    }
    cd_size = le32(end + 12);
    cd_off = le32(end + 16);
    count = le16(end + 8);
located:
    if (hp < cd_size || hp < cd_off)
        goto out; /* "bad central directory size" / "... offset" */
    hp -= cd_size;
    if (hp < cd_off)
        goto out; /* "bad central directory size or offset" */
    rec = malloc(46 + 3 * 65535);
    if (!rec)
        goto out;
    uint64_t at = hp, n = 0;
    for (;;) {
        size_t got = at < size ? (size - at < 46 ? (size_t)(size - at) : 46) : 0;
        if (got < 4 || !origin_read(o, fd, at, rec, got))
            goto out; /* EOFError */
        if (memcmp(rec, "PK\1\2", 4) != 0) {
            if (era == ZI_64 && n != count)
                goto out; /* "mismatched num_entries" */
            break;
        }
        if (got < 46)
            goto out;
        uint64_t csize = le32(rec + 20), usize = le32(rec + 24), local = le32(rec + 42);
        size_t nlen = le16(rec + 28), rest = (size_t)le16(rec + 30) + le16(rec + 32);
        if (at + 46 + nlen + rest > size ||
            !origin_read(o, fd, at + 46, rec + 46, nlen + rest))
            goto out; /* "can't read Zip file" */
        if (era == ZI_64 && (usize == 0xFFFFFFFFu || csize == 0xFFFFFFFFu ||
                             local == 0xFFFFFFFFu)) {
            /* The zip64 extra, read as 3.13's loop does: the values count
             * is taken from all that is left of the extra (and comment)
             * bytes, so a zip64 field must come last. */
            const unsigned char *x = rec + 46 + nlen;
            size_t xl = rest;
            while (xl) {
                if (xl < 4 || xl < 4 + (size_t)le16(x + 2))
                    goto out; /* "can't read header extra" */
                if (le16(x) == 1) {
                    if ((xl - 4) % 8 != 0 || (xl - 4) / 8 > 3)
                        goto out;
                    size_t nv = (xl - 4) / 8, k = 0;
                    uint64_t *fields[3] = {&usize, &csize, &local};
                    for (int f = 0; f < 3; f++) {
                        if (*fields[f] != 0xFFFFFFFFu)
                            continue;
                        if (k == nv)
                            goto out; /* values.pop(0) of an empty list */
                        *fields[f] = le64(x + 4 + 8 * k++);
                    }
                    break;
                }
                xl -= 4 + (size_t)le16(x + 2);
                x += 4 + le16(x + 2);
            }
        }
        if (local > cd_off)
            goto out; /* "bad local header offset" */
        at += 46 + nlen + rest;
        n++;
    }
    names = n > LONG_MAX ? LONG_MAX : (long)n;
out:
    free(tail);
    free(rec);
    return names;
}

/* Fills SET's zi_unreadable: a bit per era whose zipimport cannot open O. */
static void zipimport_eras(const struct origin *o, struct archive_set *set)
{
    int fd = -1;
    uint64_t size = o->mem_len;
    struct stat st;
    set->zi_unreadable = 0;
    if (o->path) {
        fd = open_noatime(o->path, 0);
        if (fd < 0 || fstat(fd, &st) != 0) {
            set->zi_unreadable = (1u << ZI_ERAS) - 1;
            if (fd >= 0)
                close(fd);
            return;
        }
        size = (uint64_t)st.st_size;
    }
    for (int era = 0; era < ZI_ERAS; era++)
        if (zipimport_names(o, fd, size, era) <= 0)
            set->zi_unreadable |= 1u << era;
    if (fd >= 0)
        close(fd);
}

/* ---- the view the verdict asks ------------------------------------------------------ */

struct view_ctx {
    const struct archive_set *set;
    const char *dir;  /* the source directory: "pkg/sub/" or "" */
    size_t dir_len;
    const pyc_magic *zi_reader; /* --zipimport: the version whose zipimport
                                   reads the sources (NULL: not known) */
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
    if (set->zipimport && m->zi_size_ff && vc->zi_reader &&
        zipimport_era(vc->zi_reader) < ZI_64) {
        /* Before 3.13 zipimport takes the 32-bit field as the size it
         * compares with a pyc's (_get_mtime_and_size_of_source). */
        st->st_size = (off_t)0xFFFFFFFFu;
    }
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
    uint64_t prefix_len;    /* archive_fix: bytes before the zip (a zipapp's
                               "#!" line), copied as they are */
    struct image_set *image; /* the tar is a container image (engine/image.h) */
    image_hooks image_hooks;
    char *image_shown;      /* ARCHIVE@REF of the image judged (an index of
                               several) */
    size_t image_index;     /* the image the set holds */
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
            m->implicit = true;
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

static int read_needed(struct run *r, uint64_t *budget);

/* Pass 2: the bytes of the source members hash-based pycs need. */
static int pass_two(struct run *r, uint64_t *budget)
{
    return mark_sources(r) ? read_needed(r, budget) : 0;
}

static int read_needed_image(struct run *r, uint64_t *budget);

/* Reads the bytes of every member marked need_data and not read yet. */
static int read_needed(struct run *r, uint64_t *budget)
{
    if (r->image)
        return read_needed_image(r, budget);
    struct archive_set *set = &r->set;
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

/* The interpreter whose magic number M's first bytes hold, or NULL. */
static const pyc_magic *head_magic(const struct member *m)
{
    return m->head_ok && m->head_len >= 4 ? pyc_magic_lookup(le32(m->head)) : NULL;
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
    struct view_ctx vc = {set, m->name, n->dl, head_magic(m)};
    pyc_source_view view = {member_stat, member_hash, &vc, set->zipimport};
    if (pyc_verdict_judge_view(n->base, &n->cn, &view, r->vopt, m->head, m->head_len, v) !=
        0) {
        member_error(r, m->name, errno, "judge member", NULL);
        return -1;
    }
    v->file_size = m->size;
    if (set->zipimport && v->judge && (set->zi_unreadable >> zipimport_era(v->judge)) & 1) {
        /* That version's zipimport never opens the archive. */
        v->status = PYC_SHADOWED;
        v->reason = PYC_REASON_ZIPIMPORT_UNREADABLE;
    }
    return 1;
}

/* The verdict on C, the member that has a cache's name (or NULL: none),
 * if it is a file whose first bytes were read: true with *V. For --expect
 * and compile's plan, where a cache that cannot be judged is no cache (the
 * scan of the members reports it), never an error of its own. */
static bool judge_named(struct run *r, const struct member *c, pyc_verdict *v)
{
    if (!c || c->type != MEMBER_FILE || !c->head_ok)
        return false;
    struct member_name n;
    bool in_pc;
    size_t bl;
    n.dl = source_dir_len(c->name, &in_pc);
    n.base = base_of(c->name, &bl);
    pyc_cache_name_parse(n.base, in_pc, false, &n.cn);
    struct view_ctx vc = {&r->set, c->name, n.dl, head_magic(c)};
    pyc_source_view view = {member_stat, member_hash, &vc, r->set.zipimport};
    if (pyc_verdict_judge_view(n.base, &n.cn, &view, r->vopt, c->head, c->head_len, v) != 0)
        return false;
    v->file_size = c->size;
    return true;
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
                bool have = judge_named(r, c, &v);
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

/* Makes R's set image I's final file system: the members are its paths,
 * each with the mtime of the layer that last wrote it; a hash-based pyc's
 * source is read from that layer. 0; -1 when the image could not be built
 * (nothing to judge), -2 when sources could not be read (judged without
 * them); reported. */
static int load_image(struct run *r, size_t i, uint64_t *budget)
{
    free_set(&r->set);
    r->set.v = NULL;
    r->set.slots = NULL;
    r->set.n = r->set.cap = r->set.nslots = 0;
    r->image_index = i;
    if (image_files(r->image, i, add_image_file, r) != 0 || add_parents(&r->set) != 0)
        return -1;
    return mark_sources(r) && read_needed(r, budget) != 0 ? -2 : 0;
}

/* How many different images R's index names: the same manifest under two
 * tags (two descriptors of one digest) is one image, fixed once, and every
 * descriptor of it rewritten. */
static size_t distinct_images(const struct image_set *set)
{
    size_t n = 0;
    for (size_t i = 0; i < image_count(set); i++) {
        size_t k = 0;
        while (k < i && strcmp(image_ref(set, k), image_ref(set, i)) != 0)
            k++;
        n += k == i;
    }
    return n;
}

/* read_needed for an image: the members marked need_data are read from
 * the layers that hold them (image_read). */
static int read_needed_image(struct run *r, uint64_t *budget)
{
    size_t n = 0, built = 0;
    for (size_t k = 0; k < r->set.n; k++)
        n += r->set.v[k].need_data && !r->set.v[k].data && !r->set.v[k].data_error;
    if (!n)
        return 0;
    const char **names = malloc(n * sizeof *names);
    size_t *index = malloc(n * sizeof *index);
    if (!names || !index) {
        free(names);
        free(index);
        member_error(r, NULL, ENOMEM, "read image", NULL);
        return -1;
    }
    for (size_t k = 0; k < r->set.n; k++) {
        const struct member *m = &r->set.v[k];
        if (m->need_data && !m->data && !m->data_error) {
            names[built] = m->name;
            index[built++] = k;
        }
    }
    /* The image the set was built from: image_read rebuilds nothing. */
    struct image_reading ir = {&r->set, index};
    int rc = image_read(r->image, r->image_index, names, n, (size_t)ARCHIVE_MAX_MEMBER_BYTES,
                        budget, got_source, &ir);
    free(names);
    free(index);
    return rc;
}

/* Judges each image of R's image archive on the file system its layers
 * make (load_image). One image is shown as SHOWN/path; each image of an
 * index of several as SHOWN@DIGEST/path. Returns 0, 1 (stopped), -1 (an
 * image could not be judged: reported). */
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
        int lr = load_image(r, i, budget);
        if (lr != 0)
            rc = -1;
        if (lr == -1)
            continue;
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
    struct stat st;
    if (o->path && stat(o->path, &st) == 0 && S_ISDIR(st.st_mode)) {
        /* An OCI layout directory (archive_sniff): image.c reads it as
         * the tar it would be. */
        r->image_hooks = (image_hooks){r, image_head_size, image_relevant, image_error};
        int ir = image_open(o->path, NULL, 0, budget, &r->image_hooks, &r->image);
        if (ir == 0)
            member_error(r, NULL, EINVAL, "read archive", "not an OCI image layout");
        return ir > 0 ? 0 : -1;
    }
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
        zipimport_eras(o, &r->set);
    }
    return pass_two(r, budget) != 0 ? -1 : 0;
}

/* Whether libarchive is there to read SHOWN (archive_lib.h: it is loaded
 * on first use); if not, the archive's one error says why. */
static bool library_ready(const char *shown, archive_fn *fn, void *ctx)
{
    char why[256], detail[400];
    if (archive_lib_load(why, sizeof why) == 0)
        return true;
    snprintf(detail, sizeof detail, "pycache reads archives with libarchive, and %s", why);
    archive_item item = {
        .event = ARCHIVE_ERROR, .path = shown, .archive = shown, .size = -1,
        .error = ENOTSUP, .error_op = "read", .error_detail = detail,
    };
    fn(&item, ctx);
    return false;
}

static int scan_origin(const struct origin *o, const char *shown, const archive_options *aopt,
                       const pyc_verdict_options *vopt, const pyc_magic *const *expect,
                       const unsigned *expect_opts, size_t nexpect, const char *only,
                       archive_fn *fn, void *ctx)
{
    if (!library_ready(shown, fn, ctx))
        return -1;
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

/* diff and verify: every cache member's whole bytes (verify: its verdict
 * and its source member's bytes too), read as normalize's plan reads them
 * (pass 2's reader on members marked need_data), nothing extracted. */
/* The source member of the cache member NAME, into SRC (CAP bytes): the
 * name mark_sources gives it. false when it has no such name. */
static bool source_of(const char *name, char *src, size_t cap)
{
    bool in_pc;
    size_t dl = source_dir_len(name, &in_pc), bl;
    const char *base = base_of(name, &bl);
    pyc_cache_name cn;
    pyc_cache_kind kind = pyc_cache_name_parse(base, in_pc, false, &cn);
    if (kind == PYC_KIND_NONE || kind == PYC_KIND_TEMP || dl + cn.stem_len + 4 > cap)
        return false;
    memcpy(src, name, dl);
    memcpy(src + dl, base, cn.stem_len);
    memcpy(src + dl + cn.stem_len, ".py", 4);
    return true;
}

/* archive_read_caches on R's member table (an archive's members, or an
 * image's final file system). */
static int read_caches(struct run *r, bool sources, archive_bytes_fn *bytes, void *ctx,
                       uint64_t *budget)
{
    struct archive_set *set = &r->set;
    bool any = false;
    char src[PATH_MAX];
    for (size_t k = 0; k < set->n; k++) {
        struct member *m = &set->v[k];
        if (!m->cache || m->superseded || !m->head_ok || m->type != MEMBER_FILE)
            continue;
        if (!m->data) {
            m->need_data = true;
            any = true;
        }
        struct member *s = sources && source_of(m->name, src, sizeof src) ? lookup(set, src)
                                                                           : NULL;
        if (s && s->type == MEMBER_FILE && !s->superseded && !s->data) {
            s->need_data = true;
            any = true;
        }
    }
    if (any && read_needed(r, budget) != 0)
        return -1;
    for (size_t k = 0; k < set->n && !r->stopped; k++) {
        struct member *m = &set->v[k];
        if (!m->cache || m->superseded || !m->head_ok || m->type != MEMBER_FILE ||
            !source_of(m->name, src, sizeof src))
            continue;
        archive_cache ac = {.member = m->name};
        pyc_verdict v;
        struct member_name nm;
        int judged = sources ? judge_member(r, m, &nm, &v) : 0;
        if (judged < 0)
            continue;
        if (judged == 1)
            ac.verdict = &v;
        ac.shown = display(r, &r->pathbuf, &r->pathcap, m->name);
        if (!m->data) {
            int e = m->data_error ? m->data_error : EIO;
            member_error(r, m->name, e, "read member",
                         e == EFBIG ? "larger than 256 MiB" : strerror(e));
            continue;
        }
        ac.data = m->data;
        ac.len = m->data_len;
        struct member *s = sources ? lookup(set, src) : NULL;
        if (s && s->type == MEMBER_FILE && !s->superseded) {
            ac.source_member = s->name;
            ac.source_shown = display(r, &r->srcbuf, &r->srccap, s->name);
            ac.source = s->data;
            ac.source_len = s->data_len;
            ac.source_error = s->data ? 0 : s->data_error ? s->data_error : EIO;
        }
        if (bytes(&ac, ctx) != 0)
            r->stopped = 1;
    }
    return r->stopped ? 1 : 0;
}

int archive_read_caches(const char *path, const archive_options *aopt,
                        const pyc_verdict_options *vopt, bool sources, archive_bytes_fn *bytes,
                        archive_fn *fn, void *ctx)
{
    if (!library_ready(path, fn, ctx))
        return -1;
    struct origin o = {path, NULL, 0};
    struct run r;
    run_init(&r, &o, path, aopt, vopt, fn, ctx);
    uint64_t budget = max_bytes(aopt);
    int rc = prepare(&r, &o, path, &budget);
    if (rc != 0)
        goto out;
    rc = -1;
    if (r.image) {
        /* An image's caches are the paths of its final file system (as
         * check judges them), their bytes and their sources' read from the
         * layers that provide them. One image: the paths pair with
         * another archive's or tree's by name. */
        if (distinct_images(r.image) != 1) {
            char detail[160];
            snprintf(detail, sizeof detail, "an index of %zu images: diff and verify read an "
                                            "archive of one image",
                     distinct_images(r.image));
            member_error(&r, NULL, 0, "read archive", detail);
            goto out;
        }
        if (load_image(&r, 0, &budget) == -1)
            goto out;
    }
    rc = read_caches(&r, sources, bytes, ctx, &budget);
out:
    run_free(&r);
    return rc;
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

/* Appends to *OUT (*K bytes used of *CAP) a RECORD line for each file
 * member compile added: "path,sha256=DIGEST,SIZE\n". 0, or -1 (ENOMEM). */
static int add_record_lines(const struct archive_set *set, char **out, size_t *k, size_t *cap)
{
    for (size_t i = 0; i < set->n; i++) {
        const struct member *m = &set->v[i];
        if (!m->added || m->type != MEMBER_FILE)
            continue;
        size_t need = *k + strlen(m->name) + 100;
        if (need > *cap) {
            char *n2 = realloc(*out, need * 2);
            if (!n2)
                return -1;
            *out = n2;
            *cap = need * 2;
        }
        size_t nl = strlen(m->name);
        memcpy(*out + *k, m->name, nl);
        *k += nl;
        *k += (size_t)sprintf(*out + *k, ",sha256=");
        *k += b64url(m->digest, 32, *out + *k);
        *k += (size_t)sprintf(*out + *k, ",%lld\n", (long long)m->written_size);
    }
    return 0;
}

/* The RECORD DATA (LEN bytes) with the line of every member whose bytes
 * were replaced rewritten ("path,sha256=DIGEST,SIZE") and the line of every
 * dropped member left out. Returns a malloc'd buffer (*OUT_LEN bytes), or
 * NULL: ENOMEM, or EINVAL with *WHY when a converted member is listed
 * before it was written (its digest is not known yet). */
static char *rewrite_record(const struct archive_set *set, const unsigned char *data,
                            size_t len, size_t *out_len, const char **why)
{
    size_t cap = len + 64 * 16 + 1024, k = 0;
    char *out = malloc(cap);
    bool added_done = false;
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
        if (m && m->plan == PLAN_DROP) {
            /* pip checks only the files a RECORD lists against it, but
             * installer and pip's uninstall read every line: a line for a
             * file the wheel no longer has would be an error there. */
            i = nl ? end + 1 : len;
            continue;
        }
        if (c1 && line[0] != '"' && !added_done) {
            size_t pl = (size_t)(c1 - line);
            if (pl > 17 && memcmp(line + pl - 17, ".dist-info/RECORD", 17) == 0) {
                /* The files compile added, just before RECORD's own line. */
                if (add_record_lines(set, &out, &k, &cap) != 0) {
                    free(out);
                    return NULL;
                }
                added_done = true;
            }
        }
        if (m && (m->plan == PLAN_HEAD || m->plan == PLAN_REPLACE)) {
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
    if (!added_done && add_record_lines(set, &out, &k, &cap) != 0) {
        free(out);
        return NULL;
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
        /* The source member's stat, as the new archive records it: sizes in
         * the 32-bit fields (record_moved) for every zipimport. */
        struct view_ctx vc = {set, m->name, nm.dl, NULL};
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
            m->plan = PLAN_HEAD;
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
    if (m && m->plan == PLAN_REPLACE) {
        /* The new bytes are known: the old ones are skipped unread. */
        archive_entry_set_size(e, (la_int64_t)m->new_len);
        if (archive_write_header(w, e) != ARCHIVE_OK ||
            archive_write_data(w, m->new_data, m->new_len) != (la_ssize_t)m->new_len) {
            *why = archive_error_string(w);
            return -1;
        }
        return 0;
    }
    bool rewrite = m && (m->plan == PLAN_HEAD || (r->set.zip && is_record(m->name)));
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
    unsigned char *data = read_whole_member(a, &len, budget, why);
    if (!data)
        return -1;
    unsigned char *out = data;
    size_t out_len = len;
    char *record = NULL;
    if (m->plan == PLAN_HEAD) {
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

/* Writes the members compile added after their source S, whose entry in
 * the archive read is SRC: each a copy of the source's entry (owner, mtime)
 * with its own name (in the source's spelling: "./pkg/" stays "./pkg/"),
 * type, mode 0644 (0755 for a directory) and bytes. 0, or -1 with *WHY. */
static int write_added(struct run *r, struct archive *w, struct archive_entry *src,
                       const struct member *s, const char **why)
{
    const char *raw = archive_entry_pathname(src);
    const char *rslash = raw ? strrchr(raw, '/') : NULL;
    size_t rdl = rslash ? (size_t)(rslash - raw) + 1 : 0, dl;
    base_of(s->name, &dl);
    size_t sdl = dl ? dl + 1 : 0;
    for (size_t i = s->add_first; i < s->add_first + s->add_count; i++) {
        const struct member *m = &r->set.v[i];
        const char *rel = m->name + sdl;
        size_t rl = strlen(rel);
        char *name = malloc(rdl + rl + 2);
        struct archive_entry *e = name ? archive_entry_clone(src) : NULL;
        if (!e) {
            free(name);
            *why = "out of memory";
            return -1;
        }
        memcpy(name, raw, rdl);
        memcpy(name + rdl, rel, rl);
        name[rdl + rl] = '\0';
        if (m->type == MEMBER_DIR)
            strcat(name, "/");
        archive_entry_set_pathname(e, name);
        archive_entry_xattr_clear(e);
        archive_entry_acl_clear(e);
        bool dir = m->type == MEMBER_DIR;
        archive_entry_set_filetype(e, dir ? AE_IFDIR : AE_IFREG);
        archive_entry_set_perm(e, dir ? 0755 : 0644);
        archive_entry_set_size(e, dir ? 0 : (la_int64_t)m->new_len);
        int rc = 0;
        if (archive_write_header(w, e) != ARCHIVE_OK ||
            (!dir && archive_write_data(w, m->new_data, m->new_len) != (la_ssize_t)m->new_len)) {
            *why = archive_error_string(w);
            rc = -1;
        }
        archive_entry_free(e);
        free(name);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* How many bytes come before the zip in PATH (a zipapp's "#!" line, or a
 * self-extractor's stub), to be copied as they are in front of the zip
 * libarchive writes. The zip's own start is where zipimport
 * (_read_directory: header_position - header_offset - header_size, the
 * arc_offset) and zipfile (_EndRecData: concat) find it: the end record's
 * position minus the directory's size and offset; a zip whose offsets were
 * made absolute (zip -A) starts at 0 by that count, and its prefix ends at
 * the first local header the directory names. libarchive writes offsets
 * from the start of what it writes, which both readers take as they take a
 * zipapp written by Python's zipapp module. 0, or -1 with errno or *WHY. */
static int zip_prefix_len(const char *path, uint64_t *len, const char **why)
{
    *len = 0;
    int fd = open_noatime(path, 0);
    struct stat st;
    unsigned char *tail = NULL, *cd = NULL;
    int rc = -1;
    if (fd < 0 || fstat(fd, &st) != 0)
        goto out;
    unsigned char two[2];
    if (pread(fd, two, 2, 0) == 2 && memcmp(two, "PK", 2) == 0) {
        rc = 0; /* a zip from its first byte */
        goto out;
    }
    uint64_t size = (uint64_t)st.st_size;
    size_t tail_len = size < 65536 + 22 ? (size_t)size : 65536 + 22;
    tail = malloc(tail_len ? tail_len : 1);
    if (!tail || tail_len < 22 ||
        pread(fd, tail, tail_len, (off_t)(size - tail_len)) != (ssize_t)tail_len)
        goto bad;
    size_t end;
    bool found = find_end_record(tail, tail_len, &end);
    if (!found)
        goto bad;
    uint64_t eocd = size - tail_len + end;
    uint32_t cd_size = le32(tail + end + 12), cd_off = le32(tail + end + 16);
    if (cd_off == 0xFFFFFFFFu || cd_size == 0xFFFFFFFFu) {
        *why = "a zip64 archive behind other data is not rewritten";
        errno = 0;
        goto out;
    }
    if ((uint64_t)cd_size + cd_off > eocd)
        goto bad;
    uint64_t base = eocd - cd_size - cd_off; /* zipimport's arc_offset */
    cd = malloc(cd_size ? cd_size : 1);
    if (!cd || pread(fd, cd, cd_size, (off_t)(eocd - cd_size)) != (ssize_t)cd_size)
        goto bad;
    uint64_t first = UINT64_MAX;
    for (size_t p = 0; p + 46 <= cd_size && memcmp(cd + p, "PK\1\2", 4) == 0;
         p += 46 + (size_t)le16(cd + p + 28) + le16(cd + p + 30) + le16(cd + p + 32)) {
        uint64_t local = le32(cd + p + 42);
        if (local < first)
            first = local;
    }
    *len = base + (first == UINT64_MAX ? cd_off : first);
    if (*len > size)
        goto bad;
    rc = 0;
    goto out;
bad:
    *why = "the data before the zip cannot be told from the zip";
    errno = 0;
out:
    free(tail);
    free(cd);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* libarchive's zip writer derives a member's DOS date/time field from its
 * mtime, truncated to an even second (archive_write_set_format_zip.c,
 * dos_time), where Info-ZIP rounds an odd second up: zipimport, which reads
 * only that field (_parse_dostime), would see a source 2 s older than in
 * the original, and a legacy pyc stamped from the original fall outside its
 * +-1 s. So the field of every member the original had is put back, in the
 * central directory and in the local header, as it was (it is outside
 * every CRC). A zip64 directory (offsets 0xFFFFFFFF) is left as written.
 * FD: the zip just written. 0, or -1 with errno. */
static int restore_dos_times(int fd, const struct archive_set *set, uint64_t base)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -1;
    uint64_t size = (uint64_t)st.st_size;
    size_t tail_len = size < 65536 + 22 ? (size_t)size : 65536 + 22;
    unsigned char *tail = malloc(tail_len ? tail_len : 1), *cd = NULL;
    int rc = -1;
    if (!tail || tail_len < 22 || pread(fd, tail, tail_len, (off_t)(size - tail_len)) !=
                                      (ssize_t)tail_len)
        goto out;
    size_t end;
    bool found = find_end_record(tail, tail_len, &end);
    if (!found) {
        errno = EINVAL;
        goto out;
    }
    uint32_t cd_size = le32(tail + end + 12), cd_off = le32(tail + end + 16);
    if (cd_off == 0xFFFFFFFFu || cd_size == 0xFFFFFFFFu) {
        rc = 0; /* zip64: left as written */
        goto out;
    }
    cd = malloc(cd_size ? cd_size : 1);
    if (!cd || pread(fd, cd, cd_size, (off_t)(base + cd_off)) != (ssize_t)cd_size)
        goto out;
    for (size_t p = 0; p + 46 <= cd_size && memcmp(cd + p, "PK\1\2", 4) == 0;) {
        size_t nlen = le16(cd + p + 28), xlen = le16(cd + p + 30), clen = le16(cd + p + 32);
        uint32_t local = le32(cd + p + 42);
        if (p + 46 + nlen > cd_size)
            break;
        char *raw = strndup((const char *)cd + p + 46, nlen);
        if (!raw)
            goto out;
        char *name = normalise(raw);
        free(raw);
        const struct member *m = name ? lookup(set, name) : NULL;
        free(name);
        if (m && m->has_dos && !m->added) {
            unsigned char td[4] = {(unsigned char)(m->dos_time & 0xFF),
                                   (unsigned char)(m->dos_time >> 8),
                                   (unsigned char)(m->dos_date & 0xFF),
                                   (unsigned char)(m->dos_date >> 8)};
            memcpy(cd + p + 12, td, 4);
            unsigned char sig[4];
            off_t at = (off_t)(base + local);
            if (local != 0xFFFFFFFFu && pread(fd, sig, 4, at) == 4 &&
                memcmp(sig, "PK\3\4", 4) == 0 && pwrite(fd, td, 4, at + 10) != 4)
                goto out;
        }
        p += 46 + nlen + xlen + clen;
    }
    if (pwrite(fd, cd, cd_size, (off_t)(base + cd_off)) != (ssize_t)cd_size)
        goto out;
    rc = 0;
out:
    free(tail);
    free(cd);
    return rc;
}

/* Copies the R->prefix_len bytes in front of the zip (a zipapp's "#!"
 * line) to FD as they are: libarchive then writes the zip after them. */
static int copy_prefix(struct run *r, int fd)
{
    int in = open_noatime(r->origin->path, 0);
    if (in < 0)
        return -1;
    unsigned char buf[65536];
    uint64_t done = 0;
    int rc = 0;
    while (done < r->prefix_len) {
        size_t want = r->prefix_len - done < sizeof buf ? (size_t)(r->prefix_len - done)
                                                        : sizeof buf;
        ssize_t n = pread(in, buf, want, (off_t)done);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            if (n == 0)
                errno = EIO;
            rc = -1;
            break;
        }
        for (ssize_t w = 0; w < n;) {
            ssize_t k = write(fd, buf + w, (size_t)(n - w));
            if (k < 0) {
                if (errno == EINTR)
                    continue;
                rc = -1;
                break;
            }
            w += k;
        }
        if (rc)
            break;
        done += (uint64_t)n;
    }
    int e = errno;
    close(in);
    errno = e;
    return rc;
}

/* An error about the file being written: it names OUTPUT (or the
 * temporary file), not the archive read. */
static void output_error(struct run *r, const char *output, int err, const char *op,
                         const char *detail)
{
    r->errors++;
    archive_item it = {
        .event = ARCHIVE_ERROR, .path = output, .error = err, .error_op = op,
        .error_detail = detail, .size = -1,
    };
    deliver(r, &it);
}

static void digest_of(struct member *m, const unsigned char *data, size_t len);

/* ---- zip: unchanged members copied as they are ------------------------------------------
 *
 * libarchive's writer takes a member's uncompressed bytes only
 * (archive_write_data; archive_write_zip_set_compression_deflate / _store
 * choose how it compresses them), so a zip rewritten through it has every
 * member inflated and deflated again: 7-10 s for a 43 MB zip of the
 * standard library, against 0.3 s for check. A zip is therefore rewritten
 * here: every member the plan keeps is copied as it lies in the original —
 * local header, compressed data and data descriptor, byte for byte — and
 * its central directory record is the original's with the new offset; a
 * member whose bytes change (a converted header, a compiled pyc, RECORD) or
 * is added is written stored (method 0), with the original's (or, for an
 * added one, its source's) times, extra fields and attributes; a zip64 end
 * record is written when the original had one or a count, size or offset
 * needs it. A zip this cannot lay out (a split archive, members that
 * overlap) goes through libarchive's writer instead. */

struct zentry {
    uint64_t local;          /* local header offset from the zip's start */
    uint64_t span;           /* its bytes, up to the next member's (or the
                                directory): header, data, descriptor */
    size_t rec, rec_len;     /* its record in the directory buffer */
    struct member *m;
};

struct zipdir {
    unsigned char *cd;       /* the original central directory */
    size_t cd_len;
    uint64_t base;           /* the zip's start in the file (arc_offset) */
    uint64_t cd_off;         /* from the zip's start */
    bool had64;              /* a zip64 end record */
    unsigned char *comment;  /* the end record's comment */
    size_t comment_len;
    struct zentry *v;
    size_t n;
};

static void put16(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
    put16(p, v & 0xFFFF);
    put16(p + 2, v >> 16);
}

static void put64(unsigned char *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

/* CRC-32 (ISO 3309, as zip uses), for the members written stored. */
static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    static uint32_t table[256];
    static bool ready;
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = true;
    }
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static int cmp_local(const void *a, const void *b)
{
    const struct zentry *x = a, *y = b;
    return x->local < y->local ? -1 : x->local > y->local;
}

/* A record's true sizes and offset (the fixed field, or its zip64 extra
 * field when the fixed one is 0xFFFFFFFF). False when they cannot be read. */
static bool record_values(const unsigned char *rec, size_t rec_len, uint64_t *usize,
                          uint64_t *csize, uint64_t *local)
{
    uint32_t cs = le32(rec + 20), us = le32(rec + 24), lo = le32(rec + 42);
    size_t nlen = le16(rec + 28), xlen = le16(rec + 30);
    *usize = us;
    *csize = cs;
    *local = lo;
    if (46 + nlen + xlen > rec_len)
        return false;
    const unsigned char *x = rec + 46 + nlen;
    for (size_t i = 0; i + 4 <= xlen;) {
        size_t id = le16(x + i), sz = le16(x + i + 2), k = 0;
        if (i + 4 + sz > xlen)
            return false;
        if (id == 1) {
            const unsigned char *f = x + i + 4;
            if (us == 0xFFFFFFFFu) {
                if (k + 8 > sz)
                    return false;
                *usize = le64(f + k);
                k += 8;
            }
            if (cs == 0xFFFFFFFFu) {
                if (k + 8 > sz)
                    return false;
                *csize = le64(f + k);
                k += 8;
            }
            if (lo == 0xFFFFFFFFu) {
                if (k + 8 > sz)
                    return false;
                *local = le64(f + k);
            }
            return true;
        }
        i += 4 + sz;
    }
    return us != 0xFFFFFFFFu && cs != 0xFFFFFFFFu && lo != 0xFFFFFFFFu;
}

static void free_zipdir(struct zipdir *z)
{
    free(z->cd);
    free(z->comment);
    free(z->v);
}

/* Reads the central directory of the original (a file) into Z. 0, or -1
 * when it cannot be laid out here (the caller falls back to libarchive). */
static int read_zipdir(struct run *r, int fd, struct zipdir *z)
{
    memset(z, 0, sizeof *z);
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -1;
    uint64_t size = (uint64_t)st.st_size;
    size_t tail_len = size < 65536 + 22 ? (size_t)size : 65536 + 22;
    unsigned char *tail = malloc(tail_len ? tail_len : 1);
    int rc = -1;
    if (!tail || tail_len < 22 || pread(fd, tail, tail_len, (off_t)(size - tail_len)) !=
                                      (ssize_t)tail_len)
        goto out;
    size_t end;
    bool found = find_end_record(tail, tail_len, &end);
    if (!found || le16(tail + end + 4) != 0 || le16(tail + end + 6) != 0)
        goto out; /* no end record, or a split archive */
    uint64_t eocd = size - tail_len + end;
    uint64_t cd_size = le32(tail + end + 12), cd_off = le32(tail + end + 16);
    uint64_t count = le16(tail + end + 10);
    z->comment_len = le16(tail + end + 20);
    z->comment = malloc(z->comment_len ? z->comment_len : 1);
    if (!z->comment)
        goto out;
    memcpy(z->comment, tail + end + 22, z->comment_len);
    uint64_t dir_end = eocd;
    if (eocd >= 20) {
        unsigned char loc[20], rec[56];
        if (pread(fd, loc, 20, (off_t)(eocd - 20)) == 20 && memcmp(loc, "PK\6\7", 4) == 0) {
            /* zip64: the locator names the zip64 end record, whose fields
             * are the true ones (zipfile._EndRecData64). */
            uint64_t at = eocd - 20 - 56;
            if (eocd < 76 || pread(fd, rec, 56, (off_t)at) != 56 ||
                memcmp(rec, "PK\6\6", 4) != 0 || le32(rec + 16) != 0 || le32(rec + 20) != 0)
                goto out;
            z->had64 = true;
            count = le64(rec + 32);
            cd_size = le64(rec + 40);
            cd_off = le64(rec + 48);
            dir_end = at;
        }
    }
    if (cd_size > dir_end || cd_size > (UINT64_C(1) << 30) || cd_off > dir_end - cd_size)
        goto out;
    z->base = dir_end - cd_size - cd_off;
    z->cd_off = cd_off;
    z->cd_len = (size_t)cd_size;
    z->cd = malloc(z->cd_len ? z->cd_len : 1);
    z->v = calloc(count ? (size_t)count : 1, sizeof *z->v);
    if (!z->cd || !z->v || count > z->cd_len / 46 + 1 ||
        pread(fd, z->cd, z->cd_len, (off_t)(z->base + cd_off)) != (ssize_t)z->cd_len)
        goto out;
    size_t p = 0;
    for (uint64_t i = 0; i < count; i++) {
        if (p + 46 > z->cd_len || memcmp(z->cd + p, "PK\1\2", 4) != 0)
            goto out;
        size_t len = 46 + (size_t)le16(z->cd + p + 28) + le16(z->cd + p + 30) +
                     le16(z->cd + p + 32);
        uint64_t us, cs, local;
        if (p + len > z->cd_len || !record_values(z->cd + p, len, &us, &cs, &local) ||
            le16(z->cd + p + 34) != 0)
            goto out;
        struct zentry *e = &z->v[z->n++];
        e->local = local;
        e->rec = p;
        e->rec_len = len;
        char *raw = strndup((const char *)z->cd + p + 46, le16(z->cd + p + 28));
        char *name = raw ? normalise(raw) : NULL;
        free(raw);
        e->m = name ? lookup(&r->set, name) : NULL;
        free(name);
        p += len;
    }
    if (p != z->cd_len)
        goto out;
    qsort(z->v, z->n, sizeof *z->v, cmp_local);
    for (size_t i = 0; i < z->n; i++) {
        uint64_t next = i + 1 < z->n ? z->v[i + 1].local : cd_off;
        if (next < z->v[i].local + 30)
            goto out; /* members overlap */
        z->v[i].span = next - z->v[i].local;
    }
    rc = 0;
out:
    free(tail);
    if (rc != 0) {
        free_zipdir(z);
        memset(z, 0, sizeof *z);
    }
    return rc;
}

/* Output, buffered: the file, and the directory built alongside. */
struct zout {
    int fd;
    uint64_t pos;            /* from the zip's start */
    unsigned char *dir;
    size_t dir_len, dir_cap;
    uint64_t count;
    bool need64;
};

static int zwrite(struct zout *o, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n) {
        ssize_t k = write(o->fd, b, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        b += k;
        n -= (size_t)k;
        o->pos += (uint64_t)k;
    }
    return 0;
}

static int dir_add(struct zout *o, const void *p, size_t n)
{
    if (o->dir_len + n > o->dir_cap) {
        size_t cap = (o->dir_len + n) * 2;
        unsigned char *d = realloc(o->dir, cap);
        if (!d)
            return -1;
        o->dir = d;
        o->dir_cap = cap;
    }
    memcpy(o->dir + o->dir_len, p, n);
    o->dir_len += n;
    o->count++;
    return 0;
}

/* Copies N bytes at OFF of IN to O. */
static int copy_span(struct zout *o, int in, uint64_t off, uint64_t n)
{
    unsigned char buf[65536];
    while (n) {
        size_t want = n < sizeof buf ? (size_t)n : sizeof buf;
        ssize_t k = pread(in, buf, want, (off_t)off);
        if (k <= 0) {
            if (k < 0 && errno == EINTR)
                continue;
            if (k == 0)
                errno = EIO;
            return -1;
        }
        if (zwrite(o, buf, (size_t)k) != 0)
            return -1;
        off += (uint64_t)k;
        n -= (uint64_t)k;
    }
    return 0;
}

/* The extra fields of X (LEN bytes) but the zip64 one, appended to OUT. */
static size_t extra_without_zip64(const unsigned char *x, size_t len, unsigned char *out)
{
    size_t k = 0;
    for (size_t i = 0; i + 4 <= len;) {
        size_t sz = le16(x + i + 2);
        if (i + 4 + sz > len)
            break;
        if (le16(x + i) != 1) {
            memcpy(out + k, x + i, 4 + sz);
            k += 4 + sz;
        }
        i += 4 + sz;
    }
    return k;
}

enum stored_kind { STORED_REPLACED, STORED_ADDED_FILE, STORED_ADDED_DIR };

/* DATA (LEN bytes) deflated as zip's method 8, by libarchive's own zip
 * writer (one member written to memory, its compressed bytes taken from
 * behind its local header): no compression library of our own. *OUT gets a
 * malloc'd buffer (*OUT_LEN bytes). Returns 0, or -1 when it is not smaller
 * than DATA or cannot be made (the member is then stored). */
static int deflate_member(const unsigned char *data, size_t len, unsigned char **out,
                          size_t *out_len)
{
    *out = NULL;
    if (len < 64)
        return -1;
    size_t cap = len + len / 8 + 4096, used = 0;
    unsigned char *buf = malloc(cap);
    struct archive *w = buf ? archive_write_new() : NULL;
    struct archive_entry *e = w ? archive_entry_new() : NULL;
    int rc = -1;
    if (!e)
        goto out;
    archive_write_set_format_zip(w);
    archive_entry_set_pathname(e, "m");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t)len);
    if (archive_write_open_memory(w, buf, cap, &used) != ARCHIVE_OK ||
        archive_write_header(w, e) != ARCHIVE_OK ||
        archive_write_data(w, data, len) != (la_ssize_t)len || archive_write_close(w) != ARCHIVE_OK ||
        used < 22 + 46 + 30 || memcmp(buf + used - 22, "PK\5\6", 4) != 0)
        goto out;
    uint32_t cd = le32(buf + used - 22 + 16);
    if ((size_t)cd + 46 > used || memcmp(buf + cd, "PK\1\2", 4) != 0 || le16(buf + cd + 10) != 8)
        goto out;
    uint32_t csize = le32(buf + cd + 20), local = le32(buf + cd + 42);
    if ((size_t)local + 30 > used || memcmp(buf + local, "PK\3\4", 4) != 0)
        goto out;
    size_t start = (size_t)local + 30 + le16(buf + local + 26) + le16(buf + local + 28);
    if (csize >= len || start + csize > used || le32(buf + cd + 16) != crc32_of(data, len))
        goto out;
    *out = malloc(csize ? csize : 1);
    if (!*out)
        goto out;
    memcpy(*out, buf + start, csize);
    *out_len = csize;
    rc = 0;
out:
    if (e)
        archive_entry_free(e);
    if (w)
        archive_write_free(w);
    free(buf);
    return rc;
}

/* Writes a member stored (method 0) with DATA: local header, data, and its
 * directory record made from TEMPLATE (a record of the original: times,
 * attributes, extra fields) under NAME (NLEN bytes); LOCAL_EXTRA (LX bytes):
 * the extra fields of the template's local header. KIND: the member's own
 * bytes replaced (its attributes kept), or a file or directory added after
 * the template's member (mode 0644 or 0755). */
static int write_stored(struct zout *o, const unsigned char *tmpl, const char *name,
                        size_t nlen, const unsigned char *local_extra, size_t lx,
                        const unsigned char *data, size_t len, enum stored_kind kind)
{
    uint32_t crc = crc32_of(data, len);
    uint64_t at = o->pos;
    /* Deflated when that makes it smaller, as the members around it are. */
    unsigned char *packed = NULL;
    size_t packed_len = len;
    uint16_t method = kind != STORED_ADDED_DIR &&
                              deflate_member(data, len, &packed, &packed_len) == 0
                          ? 8
                          : 0;
    unsigned char lh[30], x[65536 + 32];
    size_t xl = extra_without_zip64(local_extra, lx, x);
    uint16_t flags = le16(tmpl + 8) & 0x0800; /* the UTF-8 name flag only */
    memcpy(lh, "PK\3\4", 4);
    put16(lh + 4, 20);
    put16(lh + 6, flags);
    put16(lh + 8, method);
    memcpy(lh + 10, tmpl + 12, 4); /* DOS time and date */
    put32(lh + 14, crc);
    put32(lh + 18, (uint32_t)packed_len);
    put32(lh + 22, (uint32_t)len);
    put16(lh + 26, (uint32_t)nlen);
    put16(lh + 28, (uint32_t)xl);
    int wr = zwrite(o, lh, 30) != 0 || zwrite(o, name, nlen) != 0 || zwrite(o, x, xl) != 0 ||
             zwrite(o, packed ? packed : data, packed_len) != 0;
    free(packed);
    if (wr)
        return -1;
    /* The record: the template's fields, the new ones, its extra fields but
     * zip64 (added back when the offset needs it), no comment. */
    size_t tn = le16(tmpl + 28), tx = le16(tmpl + 30);
    unsigned char rec[46 + 65536 + 65536 + 32];
    memcpy(rec, tmpl, 46);
    put16(rec + 6, 20);
    put16(rec + 8, flags);
    put16(rec + 10, method);
    put32(rec + 16, crc);
    put32(rec + 20, (uint32_t)packed_len);
    put32(rec + 24, (uint32_t)len);
    put16(rec + 28, (uint32_t)nlen);
    put16(rec + 32, 0);
    put16(rec + 34, 0);
    if (kind != STORED_REPLACED) {
        bool unix_mode = tmpl[5] == 3; /* made on Unix: the mode in the high half */
        put16(rec + 36, 0);            /* not text */
        if (kind == STORED_ADDED_DIR)
            put32(rec + 38, (unix_mode ? UINT32_C(040755) << 16 : 0) | 0x10);
        else
            put32(rec + 38, unix_mode ? UINT32_C(0100644) << 16 : 0);
    }
    memcpy(rec + 46, name, nlen);
    size_t rx = extra_without_zip64(tmpl + 46 + tn, tx, rec + 46 + nlen);
    if (at >= 0xFFFFFFFFu) {
        unsigned char *z = rec + 46 + nlen + rx;
        put16(z, 1);
        put16(z + 2, 8);
        put64(z + 4, at);
        rx += 12;
        put32(rec + 42, 0xFFFFFFFFu);
        put16(rec + 6, 45);
        o->need64 = true;
    } else {
        put32(rec + 42, (uint32_t)at);
    }
    put16(rec + 30, (uint32_t)rx);
    return dir_add(o, rec, 46 + nlen + rx);
}

/* A kept member's record: the original's, with the new offset AT. PLAIN
 * (an archive for zipimport): sizes and offset that fit in 32 bits are
 * written there and the zip64 field is dropped. zipimport before 3.13 reads
 * only the 32-bit fields (a size of 0xFFFFFFFF then fails every pyc's size
 * check), and 3.13.0 imports struct to read a zip64 field, which recurses
 * when the archive is first on sys.path (a zipapp run directly). */
static int record_moved(struct zout *o, const unsigned char *rec, size_t len, uint64_t at,
                        bool plain)
{
    unsigned char buf[46 + 65536 * 3 + 32];
    memcpy(buf, rec, len);
    size_t nlen = le16(rec + 28), xlen = le16(rec + 30), clen = le16(rec + 32);
    uint64_t pus, pcs, plo;
    if (plain && at < 0xFFFFFFFFu &&
        (le32(rec + 20) == 0xFFFFFFFFu || le32(rec + 24) == 0xFFFFFFFFu ||
         le32(rec + 42) == 0xFFFFFFFFu) &&
        record_values(rec, len, &pus, &pcs, &plo) && pus < 0xFFFFFFFFu && pcs < 0xFFFFFFFFu) {
        size_t rx = extra_without_zip64(rec + 46 + nlen, xlen, buf + 46 + nlen);
        memcpy(buf + 46 + nlen + rx, rec + 46 + nlen + xlen, clen);
        put32(buf + 20, (uint32_t)pcs);
        put32(buf + 24, (uint32_t)pus);
        put32(buf + 42, (uint32_t)at);
        put16(buf + 30, (uint32_t)rx);
        return dir_add(o, buf, 46 + nlen + rx + clen);
    }
    if (le32(rec + 42) == 0xFFFFFFFFu) {
        /* The offset is in the zip64 field, after the sizes that are. */
        unsigned char *x = buf + 46 + nlen;
        for (size_t i = 0; i + 4 <= xlen;) {
            size_t sz = le16(x + i + 2);
            if (le16(x + i) == 1) {
                size_t k = (le32(rec + 24) == 0xFFFFFFFFu ? 8 : 0) +
                           (le32(rec + 20) == 0xFFFFFFFFu ? 8 : 0);
                put64(x + i + 4 + k, at);
                break;
            }
            i += 4 + sz;
        }
        o->need64 = true;
        return dir_add(o, buf, len);
    }
    if (at < 0xFFFFFFFFu) {
        put32(buf + 42, (uint32_t)at);
        return dir_add(o, buf, len);
    }
    /* Moved past 4 GiB: a zip64 field for the offset, after the others. */
    unsigned char *x = buf + 46 + nlen;
    size_t rx = extra_without_zip64(rec + 46 + nlen, xlen, x);
    uint64_t us, cs, lo;
    record_values(rec, len, &us, &cs, &lo);
    unsigned char *z = x + rx;
    size_t k = 4;
    put16(z, 1);
    if (le32(rec + 24) == 0xFFFFFFFFu)
        put64(z + k, us), k += 8;
    if (le32(rec + 20) == 0xFFFFFFFFu)
        put64(z + k, cs), k += 8;
    put64(z + k, at);
    k += 8;
    put16(z + 2, (uint32_t)(k - 4));
    rx += k;
    memmove(x + rx, rec + 46 + nlen + xlen, clen);
    put16(buf + 30, (uint32_t)rx);
    put32(buf + 42, 0xFFFFFFFFu);
    if (le16(buf + 6) < 45)
        put16(buf + 6, 45);
    o->need64 = true;
    return dir_add(o, buf, 46 + nlen + rx + clen);
}

/* The bytes a changed member gets: read with libarchive (the header of a
 * converted pyc replaced, digests taken), then RECORD rewritten once every
 * digest is known. Fills new_data of PLAN_HEAD members and of RECORD. */
static int changed_bytes(struct run *r, uint64_t *budget, const char **why)
{
    struct archive_set *set = &r->set;
    bool any = false;
    for (size_t k = 0; k < set->n; k++)
        any |= !set->v[k].superseded && !set->v[k].added &&
               (set->v[k].plan == PLAN_HEAD ||
                (set->v[k].type == MEMBER_FILE && is_record(set->v[k].name)));
    if (!any)
        return 0;
    char msg[256];
    int afd;
    struct archive *a = open_reader(r->origin, &afd, msg, sizeof msg);
    if (!a) {
        *why = "the archive cannot be read again";
        return -1;
    }
    struct member *record = NULL;
    unsigned char *record_data = NULL;
    size_t record_len = 0;
    int rc = 0, hr;
    struct archive_entry *e;
    while (rc == 0 && ((hr = archive_read_next_header(a, &e)) == ARCHIVE_OK ||
                       hr == ARCHIVE_WARN)) {
        const char *raw = archive_entry_pathname(e);
        char *name = raw ? normalise(raw) : NULL;
        struct member *m = name ? lookup(set, name) : NULL;
        free(name);
        if (!m || m->new_data || archive_entry_filetype(e) != AE_IFREG)
            continue;
        bool rec = is_record(m->name);
        if (m->plan != PLAN_HEAD && !rec)
            continue;
        size_t len;
        unsigned char *data = read_whole_member(a, &len, budget, why);
        if (!data) {
            rc = -1;
            break;
        }
        if (rec) {
            record = m;
            free(record_data);
            record_data = data;
            record_len = len;
            continue;
        }
        if (len < m->new_head_len) {
            free(data);
            *why = "member shorter than its header";
            rc = -1;
            break;
        }
        memcpy(data, m->new_head, m->new_head_len);
        m->new_data = data;
        m->new_len = len;
        digest_of(m, data, len);
    }
    close_reader(a, afd);
    if (rc == 0 && record) {
        size_t out_len;
        char *out = rewrite_record(set, record_data, record_len, &out_len, why);
        if (!out) {
            if (!*why)
                *why = strerror(errno);
            rc = -1;
        } else {
            record->new_data = (unsigned char *)out;
            record->new_len = out_len;
        }
    }
    free(record_data);
    return rc;
}

/* Writes the zip of R's plan to FD (after the prefix, already there): see
 * the top of this section. 0; 1 when the original cannot be laid out here
 * (nothing written yet: libarchive's writer takes over); -1 with errno or
 * *WHY. */
static int rewrite_zip_raw(struct run *r, int fd, uint64_t *budget, const char **why)
{
    int in = open_noatime(r->origin->path, 0);
    if (in < 0)
        return -1;
    struct zipdir z;
    if (read_zipdir(r, in, &z) != 0) {
        close(in);
        return 1;
    }
    int rc = -1;
    struct zout o = {.fd = fd};
    if (changed_bytes(r, budget, why) != 0)
        goto out;
    for (size_t i = 0; i < z.n; i++) {
        struct zentry *e = &z.v[i];
        struct member *m = e->m;
        const unsigned char *rec = z.cd + e->rec;
        if (m && m->plan == PLAN_DROP)
            continue;
        /* The template's local extra fields (times, owner), for a member
         * written anew or added after it. */
        unsigned char lh[30];
        unsigned char *lx = NULL;
        size_t lxl = 0;
        bool anew = m && m->new_data && !m->added;
        if (anew || (m && m->add_count)) {
            if (pread(in, lh, 30, (off_t)(z.base + e->local)) != 30 ||
                memcmp(lh, "PK\3\4", 4) != 0) {
                *why = "a local header cannot be read";
                goto out;
            }
            lxl = le16(lh + 28);
            lx = malloc(lxl ? lxl : 1);
            if (!lx || pread(in, lx, lxl, (off_t)(z.base + e->local + 30 + le16(lh + 26))) !=
                           (ssize_t)lxl) {
                free(lx);
                *why = "a local header cannot be read";
                goto out;
            }
        }
        uint64_t at = o.pos;
        int w;
        if (anew)
            w = write_stored(&o, rec, (const char *)rec + 46, le16(rec + 28), lx, lxl,
                             m->new_data, m->new_len, STORED_REPLACED);
        else
            w = copy_span(&o, in, z.base + e->local, e->span) != 0
                    ? -1
                    : record_moved(&o, rec, e->rec_len, at, r->set.zipimport);
        /* What compile added after this source, named in its spelling. */
        for (size_t k = 0; w == 0 && m && k < m->add_count; k++) {
            const struct member *add = &r->set.v[m->add_first + k];
            size_t nlen = le16(rec + 28), dl;
            const char *raw = (const char *)rec + 46;
            size_t rdl = nlen;
            while (rdl > 0 && raw[rdl - 1] != '/')
                rdl--;
            base_of(m->name, &dl);
            const char *rel = add->name + (dl ? dl + 1 : 0);
            size_t rl = strlen(rel), total = rdl + rl + (add->type == MEMBER_DIR);
            char *name = malloc(total + 1);
            if (!name) {
                w = -1;
                break;
            }
            memcpy(name, raw, rdl);
            memcpy(name + rdl, rel, rl);
            if (add->type == MEMBER_DIR)
                name[rdl + rl] = '/';
            w = write_stored(&o, rec, name, total, lx, lxl,
                             add->new_data ? add->new_data : (const unsigned char *)"",
                             add->new_len,
                             add->type == MEMBER_DIR ? STORED_ADDED_DIR : STORED_ADDED_FILE);
            free(name);
        }
        free(lx);
        if (w != 0)
            goto out;
    }
    /* The directory, a zip64 end record and locator when needed, the end
     * record with the original's comment. */
    uint64_t cd_at = o.pos, cd_len = o.dir_len;
    if (zwrite(&o, o.dir, o.dir_len) != 0)
        goto out;
    /* A zip64 end record the original had is kept, but for zipimport's
     * archives, which get one only when they need it: before 3.13 zipimport
     * looks for the directory just before the 32-bit end record and, with
     * a zip64 record between them, finds no names (zipimport_names). */
    bool z64 = (z.had64 && !r->set.zipimport) || o.need64 || o.count >= 0xFFFF ||
               cd_at >= 0xFFFFFFFFu || cd_len >= 0xFFFFFFFFu;
    if (z64) {
        unsigned char e64[56], loc[20];
        uint64_t at64 = o.pos;
        memcpy(e64, "PK\6\6", 4);
        put64(e64 + 4, 44);
        put16(e64 + 12, 45);
        put16(e64 + 14, 45);
        put32(e64 + 16, 0);
        put32(e64 + 20, 0);
        put64(e64 + 24, o.count);
        put64(e64 + 32, o.count);
        put64(e64 + 40, cd_len);
        put64(e64 + 48, cd_at);
        memcpy(loc, "PK\6\7", 4);
        put32(loc + 4, 0);
        put64(loc + 8, at64);
        put32(loc + 16, 1);
        if (zwrite(&o, e64, 56) != 0 || zwrite(&o, loc, 20) != 0)
            goto out;
    }
    unsigned char eocd[22];
    memcpy(eocd, "PK\5\6", 4);
    put16(eocd + 4, 0);
    put16(eocd + 6, 0);
    uint32_t cnt = o.count >= 0xFFFF ? 0xFFFF : (uint32_t)o.count;
    put16(eocd + 8, cnt);
    put16(eocd + 10, cnt);
    put32(eocd + 12, cd_len >= 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)cd_len);
    put32(eocd + 16, cd_at >= 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)cd_at);
    put16(eocd + 20, (uint32_t)z.comment_len);
    if (zwrite(&o, eocd, 22) != 0 || zwrite(&o, z.comment, z.comment_len) != 0)
        goto out;
    rc = 0;
out:
    free(o.dir);
    free_zipdir(&z);
    close(in);
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
        output_error(r, tmp, errno, "create", NULL);
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
    if (r->prefix_len && copy_prefix(r, fd) != 0) {
        output_error(r, tmp, errno, "write", NULL);
        goto cleanup;
    }
    /* PYCACHE_ZIP_WRITER=libarchive skips the raw copy: the writer below
     * is what a zip the raw copy cannot lay out gets (a split archive, a
     * member on another disk, overlapping members), and this is how the
     * tests reach it with ordinary zips. */
    const char *zw = getenv("PYCACHE_ZIP_WRITER");
    if (r->set.zip && !(zw && strcmp(zw, "libarchive") == 0)) {
        const char *zwhy = NULL;
        int zr = rewrite_zip_raw(r, fd, budget, &zwhy);
        if (zr < 0) {
            output_error(r, output, zwhy ? 0 : errno, "write new archive", zwhy);
            goto cleanup;
        }
        if (zr == 0)
            goto written;
        /* 1: a zip this cannot lay out: libarchive writes it. */
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
        mode_t type = archive_entry_filetype(e);
        if (m && m->plan == PLAN_DROP &&
            (m->type == MEMBER_DIR) == (type == AE_IFDIR) && !archive_entry_hardlink(e)) {
            /* Left out: the reader skips its data (a zip's by seeking). */
            hr = archive_read_next_header(a, &e);
            continue;
        }
        if (m && type != AE_IFREG)
            m = NULL;
        if (copy_entry(r, a, w, e, m, budget, &why) != 0 ||
            (m && m->add_count && write_added(r, w, e, m, &why) != 0))
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
    if (r->set.zip && restore_dos_times(fd, &r->set, r->prefix_len) != 0) {
        output_error(r, tmp, errno, "write", NULL);
        goto cleanup;
    }
written:;
    struct stat st;
    if ((r->origin->path && stat(r->origin->path, &st) == 0 &&
         fchmod(fd, st.st_mode & 07777) != 0) ||
        fsync(fd) != 0) {
        output_error(r, tmp, errno, "write", NULL);
        goto cleanup;
    }
    if (rename(tmp, output) != 0) {
        output_error(r, output, errno, "write", NULL);
        goto cleanup;
    }
    rc = 0;
    goto out;
fail:
    /* libarchive's writer keeps the errno of a failed write (ENOSPC) in
     * archive_errno, its message says only "Write error". */
    {
        int err = w ? archive_errno(w) : 0;
        output_error(r, output, err > 0 ? err : 0, "write new archive",
                     err > 0 ? NULL : why ? why : "out of memory");
    }
cleanup:
    unlink(tmp);
out:
    if (w) {
        /* Closed first: libarchive 3.6's archive_write_free skips the close
         * of a writer in the FATAL state (a failed header write), which
         * alone frees its client buffer (image.c free_writer). What a late
         * close writes goes to the unlinked temporary file. */
        archive_write_close(w);
        archive_write_free(w);
    }
    if (fd >= 0)
        close(fd);
    close_reader(a, afd);
    free(tmp);
    return rc;
}

/* Whether NAME's last component is __pycache__. */
static bool is_pycache_dir(const char *name)
{
    size_t dl;
    return strcmp(base_of(name, &dl), "__pycache__") == 0;
}

/* ARCHIVE_FIX_DROP: asks FIX->drop about each cache member, then drops
 * each __pycache__ directory member nothing kept is left in (what clean
 * and prune do to a tree's __pycache__ left empty: remove.c). Each member
 * is delivered with what will be done. */
static int plan_drops(struct run *r, const archive_fix_options *fix)
{
    struct archive_set *set = &r->set;
    for (size_t k = 0; k < set->n && !r->stopped; k++) {
        struct member *m = &set->v[k];
        if (!m->cache || m->superseded || !m->head_ok)
            continue;
        archive_item it = {.member = m->name, .size = m->size, .expect_opt = -1};
        it.path = display(r, &r->pathbuf, &r->pathcap, m->name);
        pyc_verdict v;
        struct member_name nm;
        int judged = judge_member(r, m, &nm, &v);
        if (judged < 0)
            continue;
        if (judged == 0) {
            it.event = ARCHIVE_FOREIGN;
            it.action = "kept";
            deliver(r, &it);
            continue;
        }
        it.event = ARCHIVE_CACHE;
        it.verdict = &v;
        char src[PATH_MAX];
        if (v.source_exists && nm.dl + nm.cn.stem_len + 4 <= sizeof src) {
            memcpy(src, m->name, nm.dl);
            memcpy(src + nm.dl, nm.base, nm.cn.stem_len);
            memcpy(src + nm.dl + nm.cn.stem_len, ".py", 4);
            it.source_path = display(r, &r->srcbuf, &r->srccap, src);
        }
        if (fix->drop(&it, fix->drop_ctx))
            m->plan = PLAN_DROP;
        it.action = m->plan == PLAN_DROP ? "removed" : "kept";
        deliver(r, &it);
    }
    if (r->stopped)
        return 1;
    /* Every directory above a member that stays holds something; a
     * __pycache__ directory itself holds nothing (a nested one is held
     * through what is kept inside it). */
    for (size_t k = 0; k < set->n; k++) {
        const struct member *m = &set->v[k];
        if (m->superseded || m->implicit || m->plan == PLAN_DROP ||
            (m->type == MEMBER_DIR && is_pycache_dir(m->name)))
            continue;
        for (size_t n = strlen(m->name); n-- > 0;) {
            if (m->name[n] != '/')
                continue;
            struct member *d = lookup_n(set, m->name, n);
            if (!d || d->holds)
                break;
            d->holds = true;
        }
    }
    for (size_t k = 0; k < set->n && !r->stopped; k++) {
        struct member *d = &set->v[k];
        if (d->superseded || d->implicit || d->type != MEMBER_DIR || d->holds ||
            !is_pycache_dir(d->name))
            continue;
        d->plan = PLAN_DROP;
        archive_item it = {.event = ARCHIVE_DIRECTORY, .member = d->name, .size = -1,
                           .expect_opt = -1, .action = "removed"};
        it.path = display(r, &r->pathbuf, &r->pathcap, d->name);
        deliver(r, &it);
    }
    return r->stopped;
}

/* ARCHIVE_FIX_COMPILE: one cache a target needs. */
struct want {
    size_t source;       /* member index */
    size_t target;
    int level;
    char *cache;         /* the cache member's name */
    size_t existing;     /* its member index + 1, 0 when there is none */
};

static void digest_of(struct member *m, const unsigned char *data, size_t len)
{
    struct sha256_ctx c; /* nettle: libarchive's own hash library */
    sha256_init(&c);
    sha256_update(&c, len, data);
    sha256_digest(&c, sizeof m->digest, m->digest);
    m->written_size = (int64_t)len;
    m->written = true;
}

/* Adds a member compile writes after the source member SOURCE (taking
 * NAME). NULL on out of memory. */
static struct member *add_new(struct archive_set *set, char *name, size_t source,
                              enum member_type type)
{
    bool dup;
    struct member *m = add_member(set, name, &dup);
    if (!m)
        return NULL;
    m->type = type;
    m->added = true;
    m->after = source;
    struct member *s = &set->v[source];
    if (!s->add_count)
        s->add_first = (size_t)(m - set->v);
    s->add_count++;
    return m;
}

/* Decides which caches each target needs (the name the importer of the
 * archive's use looks for: cache_from_source for extracted files, zipimport's
 * legacy NAME.pyc beside the source), keeps the fresh ones, and has the
 * others compiled from the source members' bytes: added after their
 * source, or replacing a cache that is not fresh (or in another mode). */
static int plan_compiles(struct run *r, const archive_fix_options *fix, uint64_t *budget)
{
    struct archive_set *set = &r->set;
    size_t nsources = set->n, nwant = 0, capwant = 0;
    struct want *want = NULL;
    archive_compile_job *jobs = NULL;
    size_t *job_want = NULL, njobs = 0;
    int rc = -1;
    bool lists_dirs = false;
    if (set->zipimport &&
        (fix->ntargets != 1 || fix->targets[0].levels != 1u)) {
        /* zipimport reads NAME.pyc (2.7 under -O: NAME.pyo) whatever the
         * version: one interpreter, level 0, can have its cache there. */
        member_error(r, NULL, 0, "compile archive",
                     "zipimport reads one NAME.pyc per source: compile for one --python "
                     "at level 0 (or --extracted)");
        return -1;
    }
    if (set->zipimport && zipimport_era(fix->targets[0].python) == ZI_C &&
        (set->zi_unreadable & (1u << ZI_C)) && !(set->zi_unreadable & (1u << ZI_PY))) {
        /* What 3.8 reads and 3.7 does not: the end record is not the last
         * 22 bytes (a comment after it), which the new archive keeps. */
        char why[200];
        snprintf(why, sizeof why,
                 "zipimport of %d.%d reads no zip with a trailing comment, and this one has "
                 "one: the caches would never be read (remove it with zip -z, or compile "
                 "for 3.8 or later)",
                 fix->targets[0].python->major, fix->targets[0].python->minor);
        member_error(r, NULL, 0, "compile archive", why);
        return -1;
    }
    for (size_t k = 0; k < nsources; k++)
        lists_dirs |= set->v[k].type == MEMBER_DIR && !set->v[k].implicit;
    for (size_t k = 0; k < nsources && !r->stopped; k++) {
        struct member *s = &set->v[k];
        size_t dl;
        const char *base = base_of(s->name, &dl);
        if (s->superseded || s->type != MEMBER_FILE || !ends_with(base, ".py") ||
            strlen(base) < 4)
            continue;
        size_t sdl = dl ? dl + 1 : 0, bl = strlen(base);
        for (size_t t = 0; t < fix->ntargets; t++) {
            const archive_compile_target *tg = &fix->targets[t];
            for (int level = 0; level <= 2; level++) {
                if (!(tg->levels & (1u << level)) || (set->zipimport && level > 0))
                    continue;
                char *rel = set->zipimport ? NULL
                                           : pyc_cache_from_source(tg->python, base, level,
                                                                   NULL, NULL);
                if (!set->zipimport && !rel)
                    continue; /* no such level for it (the CLI said so) */
                size_t rl = rel ? strlen(rel) : bl + 1;
                char *cache = malloc(sdl + rl + 1);
                if (!cache) {
                    free(rel);
                    goto out;
                }
                memcpy(cache, s->name, sdl);
                if (rel) {
                    memcpy(cache + sdl, rel, rl + 1);
                } else {
                    memcpy(cache + sdl, base, bl);
                    memcpy(cache + sdl + bl, "c", 2);
                }
                free(rel);
                const struct member *c = lookup(set, cache);
                pyc_verdict v;
                bool have = judge_named(r, c, &v);
                bool fresh = have && v.status == PYC_FRESH && v.header_read &&
                             v.header.magic_word == tg->python->word &&
                             (tg->python->layout != PYC_LAYOUT_FLAGS ||
                              v.header.mode == tg->mode);
                archive_item it = {.event = ARCHIVE_CACHE, .member = cache, .size = -1,
                                   .verdict = have ? &v : NULL, .expect = tg->python,
                                   .expect_opt = level};
                if (fresh) {
                    it.action = "fresh";
                    it.path = display(r, &r->pathbuf, &r->pathcap, cache);
                    it.source_path = display(r, &r->srcbuf, &r->srccap, s->name);
                    it.size = c->size;
                    deliver(r, &it);
                    free(cache);
                    continue;
                }
                if (c && c->type != MEMBER_FILE) {
                    member_error(r, cache, 0, "compile member",
                                 "a member that is no file has the cache's name");
                    free(cache);
                    continue;
                }
                if (nwant == capwant) {
                    size_t nc = capwant ? capwant * 2 : 64;
                    struct want *nw = realloc(want, nc * sizeof *nw);
                    if (!nw) {
                        free(cache);
                        goto out;
                    }
                    want = nw;
                    capwant = nc;
                }
                want[nwant++] = (struct want){k, t, level, cache,
                                              c ? (size_t)(c - set->v) + 1 : 0};
                s->need_data = true;
            }
        }
    }
    if (r->stopped) {
        rc = 1;
        goto out;
    }
    if (nwant && read_needed(r, budget) != 0)
        goto out;
    jobs = calloc(nwant ? nwant : 1, sizeof *jobs);
    job_want = calloc(nwant ? nwant : 1, sizeof *job_want);
    if (!jobs || !job_want)
        goto out;
    for (size_t i = 0; i < nwant; i++) {
        struct want *w = &want[i];
        const struct member *s = &set->v[w->source];
        const pyc_magic *py = fix->targets[w->target].python;
        if (!s->data && s->size != 0) {
            member_error(r, s->name, s->data_error ? s->data_error : EIO, "read member",
                         s->data_error == EFBIG ? "larger than 256 MiB" : NULL);
            continue;
        }
        size_t dl;
        const char *base = base_of(s->name, &dl);
        /* Stamped as the new archive records the source: its true size in
         * the 32-bit field (record_moved), whichever zipimport reads it. */
        struct view_ctx vc = {set, s->name, dl ? dl + 1 : 0, NULL};
        struct stat st;
        pyc_stamp stamp;
        if (member_stat(&vc, base, &st) != 0)
            continue;
        pyc_stamp_from_stat(py, &st, &stamp);
        job_want[njobs] = i;
        archive_compile_job *j = &jobs[njobs++];
        j->target = w->target;
        j->level = w->level;
        j->source = s->data ? s->data : (const unsigned char *)"";
        j->source_len = s->data_len;
        j->mtime = stamp.mtime;
        j->size = stamp.size;
        j->zipimport = set->zipimport;
        /* co_filename. zipimport records the path it found the source
         * under, ARCHIVE/member (zipimport._get_module_code hands
         * _compile_source the toc entry's path, archive + path_sep + name;
         * 2.7's zipimport.c the same), and never corrects it: the name the
         * archive will have on sys.path. An extracted source: its member
         * name, relative to where it is extracted; the importer of every
         * version replaces it with the file's real path when it loads the
         * pyc (_bootstrap_external._compile_bytecode: _imp._fix_co_filename;
         * 2.7: import.c update_compiled_module), as for any cache compiled
         * elsewhere. */
        const char *zname = fix->zipimport_name ? fix->zipimport_name : set->path;
        size_t need = strlen(zname) + strlen(s->name) + 2;
        char *dfile = malloc(need);
        char *path = strdup(display(r, &r->pathbuf, &r->pathcap, w->cache));
        char *spath = strdup(display(r, &r->srcbuf, &r->srccap, s->name));
        if (!dfile || !path || !spath) {
            free(dfile);
            free(path);
            free(spath);
            njobs--;
            goto out_jobs;
        }
        if (set->zipimport)
            snprintf(dfile, need, "%s/%s", zname, s->name);
        else
            snprintf(dfile, need, "%s", s->name);
        j->dfile = dfile;
        j->path = path;
        j->source_path = spath;
    }
    if (njobs && !fix->dry_run && fix->compile(jobs, njobs, fix->compile_ctx) != 0) {
        member_error(r, NULL, 0, "compile archive", "the interpreters could not be run");
        goto out_jobs;
    }
    for (size_t i = 0; i < njobs && !r->stopped; i++) {
        archive_compile_job *j = &jobs[i];
        struct want *w = &want[job_want[i]];
        const archive_compile_target *tg = &fix->targets[w->target];
        archive_item it = {.event = ARCHIVE_CACHE, .member = w->cache, .size = -1,
                           .expect = tg->python, .expect_opt = w->level,
                           .path = j->path, .source_path = j->source_path};
        if (fix->dry_run) {
            it.action = w->existing ? "recompiled" : "compiled";
        } else if (!j->pyc) {
            it.action = "error";
            it.error_op = j->error_type;
            it.error_detail = j->error ? j->error : "cannot compile";
            it.line = j->error_line > 0 ? j->error_line : 0;
        } else if (w->existing) {
            struct member *m = &set->v[w->existing - 1];
            m->plan = PLAN_REPLACE;
            m->new_data = j->pyc;
            m->new_len = j->pyc_len;
            j->pyc = NULL;
            digest_of(m, m->new_data, m->new_len);
            it.action = "recompiled";
            it.size = (int64_t)m->new_len;
        } else {
            /* A __pycache__ directory the archive does not have: listed
             * when the archive lists its directories. */
            size_t dl;
            base_of(w->cache, &dl);
            if (lists_dirs && dl && !lookup_n(set, w->cache, dl)) {
                char *dir = strndup(w->cache, dl);
                if (!dir || !add_new(set, dir, w->source, MEMBER_DIR)) {
                    free(dir);
                    goto out_jobs;
                }
            }
            struct member *m = add_new(set, w->cache, w->source, MEMBER_FILE);
            if (!m)
                goto out_jobs;
            w->cache = NULL; /* the member's name now */
            it.member = m->name;
            m->new_data = j->pyc;
            m->new_len = j->pyc_len;
            m->size = (int64_t)j->pyc_len;
            j->pyc = NULL;
            digest_of(m, m->new_data, m->new_len);
            it.action = "compiled";
            it.size = m->size;
        }
        deliver(r, &it);
    }
    rc = r->stopped ? 1 : 0;
out_jobs:
    for (size_t i = 0; i < njobs; i++) {
        free(jobs[i].dfile);
        free(jobs[i].path);
        free(jobs[i].source_path);
        free(jobs[i].pyc);
        free(jobs[i].error_type);
        free(jobs[i].error);
    }
out:
    free(jobs);
    free(job_want);
    for (size_t i = 0; i < nwant; i++)
        free(want[i].cache);
    free(want);
    return rc;
}

/* normalize ARCHIVE: every cache member's whole bytes are read (pass 2's
 * reader: members marked need_data), and each body normalize_buffer
 * (convert.c, the function `normalize` uses on a file) rewrites into the
 * canonical marshal form becomes a PLAN_REPLACE with the header untouched.
 * A member whose body its interpreter would not load, or of a format not
 * modelled, is kept as it is and reported "skipped", as on a tree. */
static int plan_normalizes(struct run *r, uint64_t *budget)
{
    struct archive_set *set = &r->set;
    bool any = false;
    for (size_t k = 0; k < set->n; k++) {
        struct member *m = &set->v[k];
        if (m->cache && !m->superseded && m->head_ok && m->type == MEMBER_FILE && !m->data) {
            m->need_data = true;
            any = true;
        }
    }
    if (any && read_needed(r, budget) != 0)
        return -1;
    for (size_t k = 0; k < set->n && !r->stopped; k++) {
        struct member *m = &set->v[k];
        if (!m->cache || m->superseded || !m->head_ok || m->type != MEMBER_FILE)
            continue;
        pyc_verdict v;
        struct member_name nm;
        if (judge_member(r, m, &nm, &v) != 1 || v.name.kind == PYC_KIND_TEMP)
            continue;
        if (!m->data) {
            int e = m->data_error ? m->data_error : EIO;
            member_error(r, m->name, e, "read member",
                         e == EFBIG ? "larger than 256 MiB" : strerror(e));
            continue;
        }
        char src[PATH_MAX];
        bool have_src = nm.dl + nm.cn.stem_len + 4 <= sizeof src;
        if (have_src) {
            memcpy(src, m->name, nm.dl);
            memcpy(src + nm.dl, nm.base, nm.cn.stem_len);
            memcpy(src + nm.dl + nm.cn.stem_len, ".py", 4);
        }
        unsigned char *out = NULL;
        size_t out_len = 0;
        const char *why = NULL;
        archive_item it = {.member = m->name, .size = m->size, .expect_opt = -1,
                           .event = ARCHIVE_CACHE, .verdict = &v};
        switch (normalize_buffer(m->data, m->data_len, &out, &out_len, &why)) {
        case NORMALIZE_DONE:
            m->plan = PLAN_REPLACE;
            m->new_data = out;
            m->new_len = out_len;
            digest_of(m, out, out_len);
            it.action = "normalized";
            it.size = (int64_t)out_len;
            break;
        case NORMALIZE_ALREADY:
            free(out);
            it.action = "canonical";
            break;
        case NORMALIZE_SKIPPED:
            it.action = "skipped";
            it.error_detail = why;
            break;
        case NORMALIZE_FAILED:
            member_error(r, m->name, errno, "normalize member", strerror(errno));
            return -1;
        }
        /* The bytes are no longer needed: a large archive's caches are
         * held once (their canonical form), not twice. */
        free(m->data);
        m->data = NULL;
        it.path = display(r, &r->pathbuf, &r->pathcap, m->name);
        if (v.source_exists && have_src)
            it.source_path = display(r, &r->srcbuf, &r->srccap, src);
        deliver(r, &it);
    }
    return r->stopped;
}

/* The plan of R (a container image's final file system) as image_fix's
 * changes: each member's path with what becomes of it. */
static int rewrite_image(struct run *r, const char *output, uint64_t *budget)
{
    struct archive_set *set = &r->set;
    image_change *v = calloc(set->n ? set->n : 1, sizeof *v);
    size_t n = 0;
    if (!v) {
        output_error(r, output, ENOMEM, "write new image", NULL);
        return -1;
    }
    for (size_t k = 0; k < set->n; k++) {
        const struct member *m = &set->v[k];
        if (m->superseded)
            continue;
        image_change c = {.name = m->name};
        if (m->added) {
            c.kind = m->type == MEMBER_DIR ? IMAGE_CHANGE_ADD_DIR : IMAGE_CHANGE_ADD_FILE;
            c.source = set->v[m->after].name;
            c.data = m->new_data;
            c.len = m->new_len;
        } else if (m->plan == PLAN_HEAD) {
            c.kind = IMAGE_CHANGE_HEAD;
            c.data = m->new_head;
            c.len = m->new_head_len;
        } else if (m->plan == PLAN_REPLACE) {
            c.kind = IMAGE_CHANGE_BYTES;
            c.data = m->new_data;
            c.len = m->new_len;
        } else if (m->plan == PLAN_DROP) {
            c.kind = IMAGE_CHANGE_DROP;
        } else {
            continue;
        }
        v[n++] = c;
    }
    const char *why = NULL;
    int rc = 0;
    /* Nothing to change and --in-place: nothing to write. Else the copy,
     * changed or not. */
    if ((n || strcmp(output, r->origin->path) != 0) &&
        image_fix(r->image, r->image_index, v, n, output, budget, &why) != 0) {
        int err = errno;
        char detail[800];
        if (err && why && *why)
            snprintf(detail, sizeof detail, "%s: %s", why, strerror(err));
        output_error(r, output, err, "write new image",
                     err && why && *why ? detail : why && *why ? why : NULL);
        rc = -1;
    }
    free(v);
    return rc;
}

int archive_fix(const char *path, const char *output, const archive_fix_options *fix,
                const archive_options *aopt, const pyc_verdict_options *vopt,
                archive_fn *fn, void *ctx)
{
    if (!library_ready(path, fn, ctx))
        return -1;
    struct origin o = {path, NULL, 0};
    struct run r;
    run_init(&r, &o, path, aopt, vopt, fn, ctx);
    const char *op = fix->kind == ARCHIVE_FIX_CONVERT     ? "convert archive"
                     : fix->kind == ARCHIVE_FIX_COMPILE   ? "compile archive"
                     : fix->kind == ARCHIVE_FIX_NORMALIZE ? "normalize archive"
                                                          : "rewrite archive";
    r.all_sources = fix->kind == ARCHIVE_FIX_CONVERT && fix->to != PYC_MODE_TIMESTAMP;
    uint64_t budget = max_bytes(aopt);
    int rc = prepare(&r, &o, path, &budget);
    if (rc != 0)
        goto out;
    rc = -1;
    if (r.image) {
        /* An image is fixed on its final file system, as check judges it;
         * the changes land in its layers (image_fix). */
        if (r.set.aopt->use == ARCHIVE_USE_ZIPIMPORT) {
            member_error(&r, NULL, 0, op,
                         "--zipimport needs a zip archive (zipimport reads no tar)");
            goto out;
        }
        if (distinct_images(r.image) != 1) {
            char detail[200];
            snprintf(detail, sizeof detail,
                     "an index of %zu images: pycache fixes an archive of one image (copy "
                     "the one to fix out first, e.g. skopeo copy --override-arch)",
                     distinct_images(r.image));
            member_error(&r, NULL, 0, op, detail);
            goto out;
        }
        if (load_image(&r, 0, &budget) == -1)
            goto out;
    }
    if (r.set.zip && !r.set.zipimport && read_zip_dostimes(&o, &r.set) != 0) {
        member_error(&r, NULL, 0, "read archive", "no readable zip central directory");
        goto out;
    }
    if (r.errors) {
        /* An archive with unsafe members is not rewritten at all. */
        member_error(&r, NULL, 0, op,
                     "it has members pycache cannot vouch for: nothing written");
        goto out;
    }
    if (r.set.zip) {
        const char *why = NULL;
        if (zip_prefix_len(path, &r.prefix_len, &why) != 0) {
            member_error(&r, NULL, errno, op, why);
            goto out;
        }
    }
    size_t nconvert;
    int planned = fix->kind == ARCHIVE_FIX_CONVERT
                      ? plan_conversions(&r, fix->to, fix->ignore_mtime, &nconvert)
                  : fix->kind == ARCHIVE_FIX_DROP      ? plan_drops(&r, fix)
                  : fix->kind == ARCHIVE_FIX_NORMALIZE ? plan_normalizes(&r, &budget)
                                                       : plan_compiles(&r, fix, &budget);
    if (planned != 0) {
        rc = planned;
        goto out;
    }
    if (r.errors) {
        member_error(&r, NULL, 0, op, "nothing written");
        goto out;
    }
    if (fix->dry_run) {
        rc = 0;
        goto out;
    }
    budget = max_bytes(aopt);
    rc = r.image ? rewrite_image(&r, output, &budget) : rewrite(&r, output, &budget);
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
    if (S_ISDIR(st.st_mode))
        return layout_dir(path);
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

int archive_fix(const char *path, const char *output, const archive_fix_options *fix,
                const archive_options *aopt, const pyc_verdict_options *vopt,
                archive_fn *fn, void *ctx)
{
    return unsupported(path, fn, ctx);
}

int archive_read_caches(const char *path, const archive_options *aopt,
                        const pyc_verdict_options *vopt, bool sources, archive_bytes_fn *bytes,
                        archive_fn *fn, void *ctx)
{
    return unsupported(path, fn, ctx);
}

#endif /* PYC_HAVE_LIBARCHIVE */
