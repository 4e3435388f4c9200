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

#include <archive.h>
#include <archive_entry.h>

#include "engine/archive.h"

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
    unsigned char *head;     /* cache: first bytes (all under --deep) */
    size_t head_len;
    bool head_ok;            /* the bytes could be read */
    bool need_data;          /* a source a hash-based pyc needs (pass 2) */
    unsigned char *data;     /* pass 2: the source's bytes */
    size_t data_len;
    int data_error;          /* pass 2: why the bytes are missing */
    bool superseded;         /* a later member has the same name */
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

/* A reader of O, or NULL with errno and libarchive's message in MSG. */
static struct archive *open_reader(const struct origin *o, char *msg, size_t cap)
{
    struct archive *a = archive_read_new();
    if (!a) {
        errno = ENOMEM;
        return NULL;
    }
    archive_read_support_filter_all(a);
    /* Seekable: the central directory is read (sizes, names and times as
     * zipimport and unzip see them), and data in front of the first
     * member (a zipapp's "#!" line) is allowed. */
    archive_read_support_format_zip_seekable(a);
    archive_read_support_format_tar(a);
    int rc = o->path ? archive_read_open_filename(a, o->path, 64 * 1024)
                     : archive_read_open_memory(a, o->mem, o->mem_len);
    if (rc != ARCHIVE_OK) {
        int e = archive_errno(a);
        const char *why = archive_error_string(a);
        snprintf(msg, cap, "%s", why ? why : "not a readable archive");
        archive_read_free(a);
        errno = e > 0 ? e : EINVAL;
        return NULL;
    }
    return a;
}

int archive_sniff(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISREG(st.st_mode))
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return -1;
    unsigned char b[512];
    ssize_t n = pread(fd, b, sizeof b, 0);
    close(fd);
    if (n < 0)
        return -1;
    /* A cache file or a source is never an archive: spare libarchive's
     * bidding for the common case of a file root. */
    if (n >= 4 && b[2] == '\r' && b[3] == '\n')
        return 0;
    /* A zip's first local header, or a tar header: an archive, however
     * damaged the rest (archive_scan then says what is wrong). */
    if (n >= 4 && memcmp(b, "PK\3\4", 4) == 0)
        return 1;
    if (n >= 262 && memcmp(b + 257, "ustar", 5) == 0)
        return 1;
    /* gzip, bzip2, xz, zstd: a tar inside, or a compressed plain file. */
    bool compressed = (n >= 2 && b[0] == 0x1f && b[1] == 0x8b) ||
                      (n >= 3 && memcmp(b, "BZh", 3) == 0) ||
                      (n >= 6 && memcmp(b, "\xfd" "7zXZ\0", 6) == 0) ||
                      (n >= 4 && memcmp(b, "\x28\xb5\x2f\xfd", 4) == 0);
    struct origin o = {path, NULL, 0};
    char msg[256] = "";
    struct archive *a = open_reader(&o, msg, sizeof msg);
    if (!a)
        return compressed && !strstr(msg, "Unrecognized archive format") ? 1 : 0;
    struct archive_entry *e;
    int rc = archive_read_next_header(a, &e);
    int format = archive_format(a);
    const char *why = archive_error_string(a);
    bool unrecognised = why && strstr(why, "Unrecognized archive format") != NULL;
    archive_read_free(a);
    if (rc == ARCHIVE_OK || rc == ARCHIVE_WARN)
        return 1;
    /* An empty zip (only its end record) or an empty tar is an archive. */
    if (rc == ARCHIVE_EOF)
        return format != 0 ? 1 : 0;
    /* A compressed stream that fails to decompress is a damaged archive;
     * one that decompresses to something else (a gzip'd source) is not an
     * archive at all. */
    return compressed && !unrecognised ? 1 : 0;
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
        fd = open(o->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
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
    const struct origin *origin;
    const pyc_verdict_options *vopt;
    const char *only;       /* inspect: one member */
    archive_fn *fn;
    void *ctx;
    int stopped;
    char *pathbuf, *srcbuf;
    size_t pathcap, srccap;
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
    if (r->only && (!member || strcmp(member, r->only) != 0))
        return 0;
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

/* Pass 2: the bytes of the source members hash-based pycs need. */
static int pass_two(struct run *r, uint64_t *budget)
{
    struct archive_set *set = &r->set;
    bool any = false;
    for (size_t k = 0; k < set->n; k++) {
        struct member *m = &set->v[k];
        if (!m->cache || m->superseded || !head_is_hash(m))
            continue;
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
    if (!any)
        return 0;
    char msg[256];
    struct archive *a = open_reader(r->origin, msg, sizeof msg);
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
    archive_read_free(a);
    (void)index;
    return 0;
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
        bool in_pc;
        size_t dl = source_dir_len(m->name, &in_pc);
        size_t bl;
        const char *base = base_of(m->name, &bl);
        pyc_cache_name cn;
        archive_item it = {.member = m->name, .size = m->size, .expect_opt = -1};
        it.path = display(r, &r->pathbuf, &r->pathcap, m->name);
        if (pyc_cache_name_parse(base, in_pc, false, &cn) == PYC_KIND_NONE) {
            it.event = ARCHIVE_FOREIGN;
            deliver(r, &it);
            continue;
        }
        struct view_ctx vc = {set, m->name, dl};
        pyc_source_view view = {member_stat, member_hash, &vc, set->zipimport};
        pyc_verdict v;
        if (pyc_verdict_judge_view(base, &cn, &view, r->vopt, m->head, m->head_len, &v) != 0) {
            member_error(r, m->name, errno, "judge member", NULL);
            continue;
        }
        v.file_size = m->size;
        it.event = ARCHIVE_CACHE;
        it.verdict = &v;
        if (cn.kind == PYC_KIND_PYCACHE || cn.kind == PYC_KIND_LEGACY) {
            char src[PATH_MAX];
            if (dl + cn.stem_len + 4 <= sizeof src) {
                memcpy(src, m->name, dl);
                memcpy(src + dl, base, cn.stem_len);
                memcpy(src + dl + cn.stem_len, ".py", 4);
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

static int scan_origin(const struct origin *o, const char *shown, const archive_options *aopt,
                       const pyc_verdict_options *vopt, const pyc_magic *const *expect,
                       const unsigned *expect_opts, size_t nexpect, const char *only,
                       archive_fn *fn, void *ctx)
{
    static const archive_options default_aopt;
    struct run r;
    memset(&r, 0, sizeof r);
    r.origin = o;
    r.vopt = vopt;
    r.only = only;
    r.fn = fn;
    r.ctx = ctx;
    r.set.path = shown;
    r.set.aopt = aopt ? aopt : &default_aopt;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    r.set.now = (int64_t)now.tv_sec;
    r.set.now_nsec = now.tv_nsec;
    uint64_t budget = max_bytes(aopt);

    int rc = -1;
    char msg[256];
    struct archive *a = open_reader(o, msg, sizeof msg);
    if (!a) {
        member_error(&r, NULL, 0, "read archive", msg);
        goto out;
    }
    rc = pass_one(&r, a, &budget);
    archive_read_free(a);
    if (rc != 0)
        goto out;
    rc = -1;
    if (add_parents(&r.set) != 0) {
        member_error(&r, NULL, ENOMEM, "read archive", NULL);
        goto out;
    }
    archive_use use = r.set.aopt->use;
    if (use == ARCHIVE_USE_AUTO && r.set.zip) {
        size_t n = strlen(shown);
        bool pyz = (n > 4 && strcmp(shown + n - 4, ".pyz") == 0) ||
                   (n > 5 && strcmp(shown + n - 5, ".pyzw") == 0);
        unsigned char two[2] = {0, 0};
        if (!pyz && o->path) {
            int fd = open(o->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
            if (fd >= 0) {
                pyz = pread(fd, two, 2, 0) == 2 && two[0] == '#' && two[1] == '!';
                close(fd);
            }
        }
        use = pyz ? ARCHIVE_USE_ZIPIMPORT : ARCHIVE_USE_EXTRACTED;
    }
    if (use == ARCHIVE_USE_ZIPIMPORT) {
        if (!r.set.zip) {
            member_error(&r, NULL, 0, "judge archive",
                         "--zipimport needs a zip archive (zipimport reads no tar)");
            goto out;
        }
        r.set.zipimport = true;
        if (read_zip_dostimes(o, &r.set) != 0) {
            member_error(&r, NULL, 0, "read archive",
                         "no readable zip central directory (zipimport: not a Zip file)");
            goto out;
        }
    }
    if (pass_two(&r, &budget) != 0)
        goto out;
    judge_members(&r);
    if (!r.stopped && nexpect)
        check_expect(&r, expect, expect_opts, nexpect);
    rc = r.stopped ? 1 : 0;
out:
    free_set(&r.set);
    free(r.pathbuf);
    free(r.srcbuf);
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
