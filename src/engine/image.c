/*
 * image.c — container images judged on the file system they unpack to.
 *
 * Three passes over the outer tar, each a header walk (an uncompressed
 * `docker save` tar is walked by seeking, its data is not read):
 *
 *   A  the small JSON members (oci-layout, index.json, manifest.json, and
 *      blobs up to IMAGE_MAX_JSON_BYTES that look like JSON) are read into
 *      memory; the index, manifests and configs are parsed with jansson and
 *      each is checked against its digest (nettle's SHA-256);
 *   B  each layer blob any image names is streamed once, through a second
 *      libarchive reader fed from the outer one (gzip, zstd or none: the
 *      layer's own filter is bid for), hashed as it is read; its entries
 *      (name, type, size, mtime, whiteouts, and the first bytes of cache
 *      files) are kept per layer. A blob whose sha256 or size differs from
 *      its descriptor is an error and no entry of it is used;
 *   C  (image_read, only when a hash-based pyc needs its source's bytes)
 *      the layers holding those sources are streamed again, hashed again.
 *
 * Memory: the names and metadata of every layer entry, the JSON blobs
 * (at most 64 MiB in all), the heads of cache files; time: each layer is
 * decompressed at most twice, and every byte decompressed counts against
 * archive_options.max_bytes.
 *
 * image_fix writes a changed image: the layers that change streamed once
 * more and rewritten, the JSON that names them rewritten, the outer tar
 * copied with those members replaced (see its section below). An OCI
 * layout directory goes through all of this as a tar made on the fly
 * (dirtar_read).
 *
 * The layer rules are the OCI image-spec's layer.md (opencontainers/
 * image-spec, "Applying Changesets", "Changeset over existing files",
 * "Whiteouts", "Opaque Whiteout"), summarised in image.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#if PYC_HAVE_LIBARCHIVE

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
#include <nettle/sha2.h>

#include "engine/archive.h"
#include "engine/image.h"
#include "platform/noatime.h"

/* JSON blobs kept from pass A, in all. */
#define JSON_TOTAL_BYTES (UINT64_C(64) << 20)

/* ---- what the passes keep ---------------------------------------------------------- */

struct blob {                /* a regular member of the outer tar */
    char *name;              /* normalised */
    int64_t size;
    unsigned char *data;     /* pass A: a JSON candidate's bytes */
    size_t len;
};

enum entry_kind { E_FILE = 1, E_DIR, E_OTHER, E_WHITEOUT, E_OPAQUE };

struct entry {               /* an entry of a layer */
    char *name;              /* the path (a whiteout: the path it removes;
                                an opaque whiteout: its directory, "" at
                                the top) */
    enum entry_kind kind;
    int64_t size, mtime;
    long nsec;
    size_t seq;              /* its ordinal in the layer tar (pass C) */
    unsigned char *head;
    size_t head_len;
    bool head_ok;
    char *link;              /* E_OTHER: a symbolic link's target as
                                recorded; a hard link's, "/" + its name */
};

struct layer {
    size_t blob;             /* index in set->blobs */
    char digest[80];         /* expected: "sha256:" + 64 hex */
    int64_t size;            /* expected blob size, -1: not declared */
    struct entry *v;
    size_t n, cap;
    bool done, bad;
};

struct image {
    char *ref;
    size_t *layers;          /* indexes in set->layers, bottom first */
    size_t n;
    /* What names its layers (image_fix rewrites them): */
    char *manifest;          /* OCI: its manifest's blob, or NULL */
    char *config;            /* its config's blob (docker save: its path) */
    char *chain[IMAGE_MAX_DEPTH]; /* the nested index blobs that lead to
                                     the manifest, outermost first */
    size_t nchain;
};

struct node {                /* a path of the file system being built */
    const struct entry *e;
    size_t layer;
    bool alive;
    size_t target;           /* a link resolved to a regular file: its
                                node + 1 (resolve_links) */
};

struct image_set {
    const char *path;
    const void *mem;
    size_t mem_len;
    const image_hooks *h;
    struct blob *blobs;
    size_t nblobs, blobcap;
    struct layer *layers;
    size_t nlayers, layercap;
    struct image *images;
    size_t nimages;
    uint64_t json_bytes;
    const char *chain[IMAGE_MAX_DEPTH]; /* walk_descriptor: the nested
                                           indexes entered */
    size_t nchain;
    char why[600];           /* image_fix's message */
    bool is_dir;             /* PATH is an OCI layout directory */
    struct dirtar *dirtar;   /* its stream, while a reader is open */
    /* the file system of the image last built (image_files) */
    struct node *nodes;
    size_t nnodes, nodecap;
    size_t *slots;           /* open addressing: node index + 1 */
    size_t nslots;
    size_t built;            /* image index + 1 */
};

static int fail(struct image_set *s, const char *member, int err, const char *detail)
{
    s->h->error(s->h->ctx, member, err, "read image", detail);
    return -1;
}

/* ---- names -------------------------------------------------------------------------- */

/* archive_member_name (archive.h): no "./", no "//", no trailing slash;
 * NULL with errno EPERM for an absolute name or a ".." component, EINVAL
 * for the top directory itself ("./": *TOP set), ENOMEM. */
static char *normalise(const char *raw, bool *top)
{
    char *name = archive_member_name(raw);
    *top = !name && errno == EINVAL;
    return name;
}

static struct blob *find_blob(struct image_set *s, const char *name)
{
    for (size_t i = s->nblobs; i-- > 0;)
        if (strcmp(s->blobs[i].name, name) == 0)
            return &s->blobs[i];
    return NULL;
}

/* "sha256:" + 64 lowercase hex: the only digest algorithm read (the one
 * every OCI implementation must support: image-spec descriptor.md). */
static bool valid_digest(const char *d)
{
    if (strncmp(d, "sha256:", 7) != 0 || strlen(d) != 7 + 64)
        return false;
    for (const char *p = d + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

static void hex_digest(const uint8_t raw[SHA256_DIGEST_SIZE], char out[80])
{
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++) {
        out[7 + 2 * i] = hex[raw[i] >> 4];
        out[8 + 2 * i] = hex[raw[i] & 15];
    }
    out[7 + 64] = '\0';
}

/* ---- an OCI layout directory, read as the tar it would be ---------------------------
 *
 * A directory holding an OCI image layout (what `skopeo copy ... oci:DIR`
 * and umoci write) is read through the same passes as a layout tar: the
 * outer reader is fed a ustar stream made on the fly from the directory's
 * oci-layout, index.json and blobs/ALG/HEX files (dirtar_read), so every
 * pass, every check and every cap is the tar's. The stream is never
 * written anywhere; a blob the reader skips is skipped by seeking
 * (dirtar_skip). Links and files other than regular ones are left out. */

struct dirtar {
    int dirfd;
    char **names;            /* "oci-layout", "index.json", "blobs/ALG/HEX" */
    int64_t *sizes, *mtimes;
    size_t n, cur;
    int state;               /* 0 header, 1 data, 2 padding, 3 end, 4 done */
    int fd;                  /* the current file */
    uint64_t off;            /* bytes of it (or of the padding) emitted */
    unsigned char buf[64 * 1024];
};

static void octal(char *field, size_t width, uint64_t v)
{
    /* width - 1 digits and a NUL; larger sizes in GNU base-256, which
     * libarchive reads. */
    if (width - 1 < 22 && v >> (3 * (width - 1))) {
        memset(field, 0, width);
        field[0] = (char)0x80;
        for (size_t i = width - 1; i > 0 && v; i--, v >>= 8)
            field[i] = (char)(v & 0xff);
        return;
    }
    snprintf(field, width, "%0*llo", (int)(width - 1), (unsigned long long)v);
}

static void dirtar_header(struct dirtar *d, unsigned char h[512])
{
    memset(h, 0, 512);
    char *c = (char *)h;
    snprintf(c, 100, "%s", d->names[d->cur]);
    octal(c + 100, 8, 0644);
    octal(c + 108, 8, 0);
    octal(c + 116, 8, 0);
    octal(c + 124, 12, (uint64_t)d->sizes[d->cur]);
    octal(c + 136, 12, d->mtimes[d->cur] < 0 ? 0 : (uint64_t)d->mtimes[d->cur]);
    c[156] = '0';
    memcpy(c + 257, "ustar", 6);
    memcpy(c + 263, "00", 2);
    memset(c + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf(c + 148, 8, "%06o", sum);
    c[155] = ' ';
}

static la_ssize_t dirtar_read(struct archive *a, void *ctx, const void **out)
{
    (void)a;
    struct dirtar *d = ctx;
    *out = d->buf;
    for (;;) {
        switch (d->state) {
        case 0:
            if (d->cur == d->n) {
                d->state = 3;
                continue;
            }
            d->fd = psys_openat_read(d->dirfd, d->names[d->cur],
                                     O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
            if (d->fd < 0)
                return ARCHIVE_FATAL;
            dirtar_header(d, d->buf);
            d->state = 1;
            d->off = 0;
            return 512;
        case 1: {
            uint64_t size = (uint64_t)d->sizes[d->cur];
            if (d->off == size) {
                close(d->fd);
                d->fd = -1;
                d->state = 2;
                continue;
            }
            size_t want = size - d->off < sizeof d->buf ? (size_t)(size - d->off) : sizeof d->buf;
            ssize_t r = pread(d->fd, d->buf, want, (off_t)d->off);
            if (r <= 0)
                return ARCHIVE_FATAL; /* an error, or the file shrank */
            d->off += (uint64_t)r;
            return r;
        }
        case 2: {
            size_t pad = (size_t)((512 - (uint64_t)d->sizes[d->cur] % 512) % 512);
            d->cur++;
            d->state = 0;
            if (!pad)
                continue;
            memset(d->buf, 0, pad);
            return (la_ssize_t)pad;
        }
        case 3:
            memset(d->buf, 0, 1024);
            d->state = 4;
            return 1024;
        default:
            return 0;
        }
    }
}

static la_int64_t dirtar_skip(struct archive *a, void *ctx, la_int64_t request)
{
    (void)a;
    struct dirtar *d = ctx;
    if (d->state != 1 || request <= 0)
        return 0;
    uint64_t left = (uint64_t)d->sizes[d->cur] - d->off;
    uint64_t n = (uint64_t)request < left ? (uint64_t)request : left;
    d->off += n;
    return (la_int64_t)n;
}

static void dirtar_free(struct dirtar *d)
{
    if (!d)
        return;
    for (size_t k = 0; k < d->n; k++)
        free(d->names[k]);
    free(d->names);
    free(d->sizes);
    free(d->mtimes);
    if (d->fd >= 0)
        close(d->fd);
    if (d->dirfd >= 0)
        close(d->dirfd);
    free(d);
}

static int dirtar_close(struct archive *a, void *ctx)
{
    (void)a;
    struct dirtar *d = ctx;
    if (d->fd >= 0)
        close(d->fd);
    d->fd = -1;
    return ARCHIVE_OK; /* freed by its set (image_free, or the next open) */
}

static int dirtar_add(struct dirtar *d, char *name, const struct stat *st)
{
    if (!(d->n & (d->n - 1)) || !d->n) {
        size_t cap = d->n ? d->n * 2 : 16;
        char **nv = realloc(d->names, cap * sizeof *nv);
        if (nv)
            d->names = nv;
        int64_t *sv = nv ? realloc(d->sizes, cap * sizeof *sv) : NULL;
        if (sv)
            d->sizes = sv;
        int64_t *mv = sv ? realloc(d->mtimes, cap * sizeof *mv) : NULL;
        if (!mv) {
            free(name);
            return -1;
        }
        d->mtimes = mv;
    }
    d->names[d->n] = name;
    d->sizes[d->n] = (int64_t)st->st_size;
    d->mtimes[d->n++] = (int64_t)st->st_mtim.tv_sec;
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The layout directory PATH's files, as the stream will hold them. */
static struct dirtar *dirtar_open(const char *path)
{
    struct dirtar *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->fd = -1;
    d->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d->dirfd < 0)
        goto fail;
    struct stat st;
    static const char *const top[] = {"oci-layout", "index.json"};
    for (size_t i = 0; i < 2; i++) {
        if (fstatat(d->dirfd, top[i], &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        char *name = strdup(top[i]);
        if (!name || dirtar_add(d, name, &st) != 0)
            goto fail;
    }
    size_t first_blob = d->n;
    int bfd = openat(d->dirfd, "blobs", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    DIR *blobs = bfd >= 0 ? fdopendir(bfd) : NULL;
    if (bfd >= 0 && !blobs)
        close(bfd);
    struct dirent *alg;
    while (blobs && (alg = readdir(blobs))) {
        if (alg->d_name[0] == '.')
            continue;
        int afd = openat(bfd, alg->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        DIR *ad = afd >= 0 ? fdopendir(afd) : NULL;
        if (afd >= 0 && !ad)
            close(afd);
        struct dirent *b;
        while (ad && (b = readdir(ad))) {
            if (b->d_name[0] == '.' ||
                fstatat(afd, b->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
                continue;
            size_t len = 6 + strlen(alg->d_name) + 1 + strlen(b->d_name) + 1;
            if (len > 100)
                continue; /* no digest name: not a blob of the layout */
            char *name = malloc(len);
            if (!name) {
                closedir(ad);
                closedir(blobs);
                goto fail;
            }
            memcpy(name, "blobs/", 6);
            strcpy(name + 6, alg->d_name);
            strcat(name, "/");
            strcat(name, b->d_name);
            if (dirtar_add(d, name, &st) != 0) {
                closedir(ad);
                closedir(blobs);
                goto fail;
            }
        }
        if (ad)
            closedir(ad);
    }
    if (blobs)
        closedir(blobs);
    qsort(d->names + first_blob, d->n - first_blob, sizeof *d->names, cmp_names);
    /* (sizes and mtimes follow their names: re-read after the sort) */
    for (size_t k = first_blob; k < d->n; k++) {
        if (fstatat(d->dirfd, d->names[k], &st, AT_SYMLINK_NOFOLLOW) != 0)
            goto fail;
        d->sizes[k] = (int64_t)st.st_size;
        d->mtimes[k] = (int64_t)st.st_mtim.tv_sec;
    }
    return d;
fail:
    dirtar_free(d);
    return NULL;
}

/* ---- the outer tar ----------------------------------------------------------------- */

static struct archive *open_outer(struct image_set *s, int *fd)
{
    *fd = -1;
    struct archive *a = archive_read_new();
    if (!a)
        return NULL;
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    int rc;
    if (s->is_dir) {
        dirtar_free(s->dirtar);
        s->dirtar = dirtar_open(s->path);
        if (!s->dirtar) {
            int e = errno;
            archive_read_free(a);
            errno = e ? e : EIO;
            return NULL;
        }
        rc = archive_read_open2(a, s->dirtar, NULL, dirtar_read, dirtar_skip, dirtar_close);
    } else if (s->path) {
        *fd = psys_openat_read(AT_FDCWD, s->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (*fd < 0) {
            archive_read_free(a);
            return NULL;
        }
        rc = archive_read_open_fd(a, *fd, 64 * 1024);
    } else {
        rc = archive_read_open_memory(a, s->mem, s->mem_len);
    }
    if (rc != ARCHIVE_OK) {
        archive_read_free(a);
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        errno = EIO;
        return NULL;
    }
    return a;
}

static void close_outer(struct archive *a, int fd)
{
    archive_read_free(a);
    if (fd >= 0)
        close(fd);
}

/* Reads the current entry whole, up to CAP bytes; NULL and errno (EFBIG
 * beyond CAP, EIO on a read error). The bytes count against *BUDGET. */
static unsigned char *read_all(struct archive *a, size_t cap, size_t *len, uint64_t *budget)
{
    size_t alloc = 4096, n = 0;
    unsigned char *buf = malloc(alloc);
    if (!buf)
        return NULL;
    for (;;) {
        if (n == alloc) {
            if (alloc > cap) {
                free(buf);
                errno = EFBIG;
                return NULL;
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
            free(buf);
            errno = EIO;
            return NULL;
        }
        if (r == 0)
            break;
        if ((uint64_t)r > *budget) {
            *budget = 0;
            free(buf);
            errno = EFBIG;
            return NULL;
        }
        *budget -= (uint64_t)r;
        n += (size_t)r;
        if (n > cap) {
            free(buf);
            errno = EFBIG;
            return NULL;
        }
    }
    *len = n;
    return buf;
}

static bool json_candidate(const char *name, int64_t size)
{
    if (size < 0 || (uint64_t)size > IMAGE_MAX_JSON_BYTES)
        return false;
    size_t n = strlen(name);
    return strcmp(name, "oci-layout") == 0 || strcmp(name, "index.json") == 0 ||
           strcmp(name, "manifest.json") == 0 || (n > 5 && strcmp(name + n - 5, ".json") == 0) ||
           strncmp(name, "blobs/", 6) == 0;
}

/* Pass A: every regular member's name and size; the JSON candidates' bytes. */
static int pass_a(struct image_set *s, uint64_t *budget)
{
    int fd;
    struct archive *a = open_outer(s, &fd);
    if (!a)
        return fail(s, NULL, errno, "cannot read the image archive");
    struct archive_entry *e;
    int rc;
    while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
        if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e))
            continue;
        const char *raw = archive_entry_pathname(e);
        bool top;
        char *name = raw ? normalise(raw, &top) : NULL;
        if (!name) {
            if (raw && errno == ENOMEM)
                goto nomem;
            continue; /* unsafe names: archive.c reported them */
        }
        struct blob *b = find_blob(s, name);
        if (b) {
            free(name); /* the last member of a name wins, as for extraction */
            free(b->data);
            b->data = NULL;
        } else {
            if (s->nblobs == IMAGE_MAX_MEMBERS) {
                free(name);
                close_outer(a, fd);
                return fail(s, NULL, E2BIG, "more than 16384 members: not an image this "
                                            "reads");
            }
            if (s->nblobs == s->blobcap) {
                size_t cap = s->blobcap ? s->blobcap * 2 : 64;
                struct blob *v = realloc(s->blobs, cap * sizeof *v);
                if (!v) {
                    free(name);
                    goto nomem;
                }
                s->blobs = v;
                s->blobcap = cap;
            }
            b = &s->blobs[s->nblobs++];
            b->name = name;
        }
        b->size = archive_entry_size_is_set(e) ? (int64_t)archive_entry_size(e) : -1;
        b->data = NULL;
        b->len = 0;
        if (!json_candidate(b->name, b->size) ||
            s->json_bytes + (uint64_t)b->size > JSON_TOTAL_BYTES)
            continue;
        size_t len;
        unsigned char *data = read_all(a, IMAGE_MAX_JSON_BYTES, &len, budget);
        if (!data) {
            if (errno == ENOMEM)
                goto nomem;
            continue; /* unreadable: "missing" if the index needs it */
        }
        if (len && data[0] != '{' && data[0] != '[' && strncmp(b->name, "blobs/", 6) == 0) {
            free(data); /* a small layer, not JSON */
            continue;
        }
        b->data = data;
        b->len = len;
        s->json_bytes += len;
    }
    if (rc != ARCHIVE_EOF) {
        const char *why = archive_error_string(a);
        fail(s, NULL, EIO, why ? why : "damaged archive");
        close_outer(a, fd);
        return -1;
    }
    close_outer(a, fd);
    return 0;
nomem:
    close_outer(a, fd);
    return fail(s, NULL, ENOMEM, NULL);
}

/* ---- the index and the manifests ------------------------------------------------- */

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static bool is_index_type(const char *t)
{
    return strcmp(t, "application/vnd.oci.image.index.v1+json") == 0 ||
           strcmp(t, "application/vnd.docker.distribution.manifest.list.v2+json") == 0;
}

static bool is_manifest_type(const char *t)
{
    return strcmp(t, "application/vnd.oci.image.manifest.v1+json") == 0 ||
           strcmp(t, "application/vnd.docker.distribution.manifest.v2+json") == 0;
}

/* The layer media types of image-spec media-types.md (plain, +gzip,
 * +zstd, their deprecated non-distributable forms) and Docker's. */
static bool is_layer_type(const char *t)
{
    static const char *const types[] = {
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    };
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (strcmp(t, types[i]) == 0)
            return true;
    return false;
}

/* The blob NAME, read in pass A and checked against DIGEST (and SIZE when
 * >= 0), parsed as JSON; NULL after reporting why. */
static json_t *load_json(struct image_set *s, const char *name, const char *digest, int64_t size)
{
    char detail[400];
    struct blob *b = find_blob(s, name);
    if (!b) {
        snprintf(detail, sizeof detail, "the image names a blob the archive does not hold");
        fail(s, name, ENOENT, detail);
        return NULL;
    }
    if (!b->data) {
        fail(s, name, EFBIG, "not readable as JSON (larger than 4 MiB, or damaged)");
        return NULL;
    }
    if (digest) {
        uint8_t raw[SHA256_DIGEST_SIZE];
        char got[80];
        struct sha256_ctx c;
        sha256_init(&c);
        sha256_update(&c, b->len, b->data);
        sha256_digest(&c, sizeof raw, raw);
        hex_digest(raw, got);
        if (strcmp(got, digest) != 0 || (size >= 0 && (uint64_t)size != b->len)) {
            snprintf(detail, sizeof detail, "digest mismatch: the descriptor says %.71s, the "
                                            "blob is %s",
                     digest, got);
            fail(s, name, EINVAL, detail);
            return NULL;
        }
    }
    json_error_t err;
    json_t *j = json_loadb((const char *)b->data, b->len, JSON_REJECT_DUPLICATES, &err);
    if (!j) {
        snprintf(detail, sizeof detail, "not valid JSON: %s (line %d)", err.text, err.line);
        fail(s, name, EINVAL, detail);
    }
    return j;
}

static struct image *new_image(struct image_set *s, const char *ref)
{
    if (s->nimages >= IMAGE_MAX_IMAGES) {
        fail(s, NULL, E2BIG, "more than 64 images in the index");
        return NULL;
    }
    struct image *v = realloc(s->images, (s->nimages + 1) * sizeof *v);
    if (!v) {
        fail(s, NULL, ENOMEM, NULL);
        return NULL;
    }
    s->images = v;
    struct image *im = &v[s->nimages];
    memset(im, 0, sizeof *im);
    im->ref = strdup(ref);
    if (!im->ref) {
        fail(s, NULL, ENOMEM, NULL);
        return NULL;
    }
    s->nimages++;
    return im;
}

/* Adds the layer blob BLOB (expected DIGEST and SIZE) to IM, sharing the
 * layer with earlier images that name the same blob. */
static int add_layer(struct image_set *s, struct image *im, const char *blob, const char *digest,
                     int64_t size)
{
    char detail[200];
    struct blob *b = find_blob(s, blob);
    if (!b) {
        snprintf(detail, sizeof detail, "layer %.71s: the archive holds no such blob", digest);
        return fail(s, blob, ENOENT, detail);
    }
    if (size >= 0 && b->size != size) {
        snprintf(detail, sizeof detail,
                 "layer %.71s: the descriptor says %lld bytes, the blob has %lld", digest,
                 (long long)size, (long long)b->size);
        return fail(s, blob, EINVAL, detail);
    }
    size_t bi = (size_t)(b - s->blobs), li;
    for (li = 0; li < s->nlayers; li++)
        if (s->layers[li].blob == bi && strcmp(s->layers[li].digest, digest) == 0)
            break;
    if (li == s->nlayers) {
        if (s->nlayers == s->layercap) {
            size_t cap = s->layercap ? s->layercap * 2 : 16;
            struct layer *v = realloc(s->layers, cap * sizeof *v);
            if (!v)
                return fail(s, NULL, ENOMEM, NULL);
            s->layers = v;
            s->layercap = cap;
        }
        struct layer *l = &s->layers[s->nlayers++];
        memset(l, 0, sizeof *l);
        l->blob = bi;
        snprintf(l->digest, sizeof l->digest, "%s", digest);
        l->size = b->size;
    }
    if (im->n == IMAGE_MAX_LAYERS)
        return fail(s, NULL, E2BIG, "an image of more than 1024 layers");
    size_t *v = realloc(im->layers, (im->n + 1) * sizeof *v);
    if (!v)
        return fail(s, NULL, ENOMEM, NULL);
    im->layers = v;
    im->layers[im->n++] = li;
    return 0;
}

static const char *str_field(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int walk_descriptor(struct image_set *s, json_t *desc, int depth);

/* An OCI image manifest (image-spec manifest.md): its layers, bottom first. */
static int read_manifest(struct image_set *s, const char *blob, const char *digest, json_t *m)
{
    json_t *layers = json_object_get(m, "layers");
    if (!json_is_array(layers))
        return fail(s, NULL, EINVAL, "an image manifest without a layers array");
    struct image *im = new_image(s, digest);
    if (!im)
        return -1;
    const char *cd = str_field(json_object_get(m, "config"), "digest");
    char cblob[96] = "";
    if (cd && valid_digest(cd))
        snprintf(cblob, sizeof cblob, "blobs/sha256/%s", cd + 7);
    im->manifest = strdup(blob);
    im->config = cblob[0] ? strdup(cblob) : NULL;
    if (!im->manifest || (cblob[0] && !im->config))
        return fail(s, NULL, ENOMEM, NULL);
    for (size_t k = 0; k < s->nchain; k++) {
        im->chain[k] = strdup(s->chain[k]);
        if (!im->chain[k])
            return fail(s, NULL, ENOMEM, NULL);
        im->nchain = k + 1;
    }
    for (size_t i = 0; i < json_array_size(layers); i++) {
        json_t *d = json_array_get(layers, i);
        const char *type = str_field(d, "mediaType"), *ld = str_field(d, "digest");
        json_t *size = json_object_get(d, "size");
        char detail[200];
        if (!type || !ld || !valid_digest(ld) || !json_is_integer(size) ||
            json_integer_value(size) < 0)
            return fail(s, NULL, EINVAL,
                        "a layer descriptor without a mediaType, sha256 digest or size");
        if (!is_layer_type(type)) {
            snprintf(detail, sizeof detail, "layer %.71s: media type '%.80s' is no file-system "
                                            "layer",
                     ld, type);
            return fail(s, NULL, EINVAL, detail);
        }
        char lblob[96];
        snprintf(lblob, sizeof lblob, "blobs/sha256/%s", ld + 7);
        if (add_layer(s, im, lblob, ld, (int64_t)json_integer_value(size)) != 0)
            return -1;
    }
    return 0;
}

static int walk_index(struct image_set *s, json_t *index, int depth)
{
    json_t *manifests = json_object_get(index, "manifests");
    if (!json_is_array(manifests))
        return fail(s, NULL, EINVAL, "an image index without a manifests array");
    for (size_t i = 0; i < json_array_size(manifests); i++)
        if (walk_descriptor(s, json_array_get(manifests, i), depth) != 0)
            return -1;
    return 0;
}

/* A descriptor of an index's manifests array: an image manifest, or a
 * nested index (image-spec image-index.md). BuildKit's attestation
 * manifests (annotation vnd.docker.reference.type) are no file system. */
static int walk_descriptor(struct image_set *s, json_t *desc, int depth)
{
    const char *type = str_field(desc, "mediaType"), *digest = str_field(desc, "digest");
    json_t *size = json_object_get(desc, "size");
    if (!type || !digest || !valid_digest(digest) || !json_is_integer(size))
        return fail(s, "index.json", EINVAL,
                    "a manifest descriptor without a mediaType, sha256 digest or size");
    json_t *ann = json_object_get(desc, "annotations");
    const char *reftype = json_is_object(ann) ? str_field(ann, "vnd.docker.reference.type") : NULL;
    if (reftype && strcmp(reftype, "attestation-manifest") == 0)
        return 0;
    if (!is_index_type(type) && !is_manifest_type(type))
        return 0; /* an artifact of another kind: no file system */
    if (depth >= IMAGE_MAX_DEPTH)
        return fail(s, NULL, ELOOP, "image indexes nested more than 4 deep");
    char blob[96];
    snprintf(blob, sizeof blob, "blobs/sha256/%s", digest + 7);
    /* image-layout.md: "The blobs directory MAY be missing referenced
     * blobs": `docker save` of one platform of a multi-platform image keeps
     * the image index but only that platform's manifest. A manifest a
     * nested index names and the archive lacks is another platform, not
     * judged; one index.json itself names must be there. */
    if (depth > 0 && is_manifest_type(type) && !find_blob(s, blob))
        return 0;
    json_t *j = load_json(s, blob, digest, (int64_t)json_integer_value(size));
    if (!j)
        return -1;
    int rc;
    if (is_index_type(type)) {
        s->chain[s->nchain++] = blob;
        rc = walk_index(s, j, depth + 1);
        s->nchain--;
    } else {
        rc = read_manifest(s, blob, digest, j);
    }
    json_decref(j);
    return rc;
}

/* A `docker save` manifest.json (moby image/tarexport): one object per
 * image, its layers as member paths, bottom first. A layer at
 * blobs/sha256/HEX (Docker 25+) is checked against HEX; a legacy
 * ID/layer.tar against the config's rootfs.diff_ids (the sha256 of the
 * uncompressed layer tar, which is what such a member holds). Returns 1
 * when this is no docker-save manifest (a tar that merely holds a file of
 * that name). */
static int read_docker_manifest(struct image_set *s, json_t *m)
{
    if (!json_is_array(m) || json_array_size(m) == 0)
        return 1;
    for (size_t i = 0; i < json_array_size(m); i++) {
        json_t *o = json_array_get(m, i);
        if (!json_is_object(o) || !str_field(o, "Config") ||
            !json_is_array(json_object_get(o, "Layers")))
            return 1;
    }
    for (size_t i = 0; i < json_array_size(m); i++) {
        json_t *o = json_array_get(m, i);
        json_t *layers = json_object_get(o, "Layers");
        bool top;
        char *config = normalise(str_field(o, "Config"), &top);
        if (!config)
            return fail(s, "manifest.json", EINVAL, "an unsafe Config path");
        /* The config's name is its digest: HEX.json, or blobs/sha256/HEX. */
        char cdigest[80] = "";
        const char *base = strrchr(config, '/') ? strrchr(config, '/') + 1 : config;
        char hex[80];
        snprintf(hex, sizeof hex, "sha256:%.64s", base);
        if ((has_suffix(base, ".json") && strlen(base) == 64 + 5) ||
            strncmp(config, "blobs/sha256/", 13) == 0)
            snprintf(cdigest, sizeof cdigest, "%s", hex);
        if (cdigest[0] && !valid_digest(cdigest))
            cdigest[0] = '\0';
        json_t *cj = load_json(s, config, cdigest[0] ? cdigest : NULL, -1);
        if (cj && !cdigest[0]) {
            /* The image ID is the config's sha256 whatever its name. */
            const struct blob *cb = find_blob(s, config);
            uint8_t raw[SHA256_DIGEST_SIZE];
            struct sha256_ctx c;
            sha256_init(&c);
            sha256_update(&c, cb->len, cb->data);
            sha256_digest(&c, sizeof raw, raw);
            hex_digest(raw, cdigest);
        }
        free(config);
        if (!cj)
            return -1;
        json_t *rootfs = json_object_get(cj, "rootfs");
        json_t *diff_ids = json_is_object(rootfs) ? json_object_get(rootfs, "diff_ids") : NULL;
        char ref[80];
        snprintf(ref, sizeof ref, "%s", cdigest);
        struct image *im = new_image(s, ref);
        if (!im) {
            json_decref(cj);
            return -1;
        }
        im->config = normalise(str_field(o, "Config"), &top);
        if (!im->config) {
            json_decref(cj);
            return fail(s, NULL, ENOMEM, NULL);
        }
        for (size_t k = 0; k < json_array_size(layers); k++) {
            json_t *lp = json_array_get(layers, k);
            char *name = json_is_string(lp) ? normalise(json_string_value(lp), &top) : NULL;
            if (!name) {
                json_decref(cj);
                return fail(s, "manifest.json", EINVAL, "an unsafe or missing layer path");
            }
            char digest[80] = "";
            if (strncmp(name, "blobs/sha256/", 13) == 0) {
                snprintf(digest, sizeof digest, "sha256:%s", name + 13);
            } else if (json_is_array(diff_ids) && k < json_array_size(diff_ids) &&
                       json_is_string(json_array_get(diff_ids, k))) {
                snprintf(digest, sizeof digest, "%s",
                         json_string_value(json_array_get(diff_ids, k)));
            }
            if (!valid_digest(digest)) {
                free(name);
                json_decref(cj);
                return fail(s, "manifest.json", EINVAL,
                            "a layer whose sha256 neither its path nor the config's "
                            "rootfs.diff_ids gives: it cannot be verified");
            }
            int rc = add_layer(s, im, name, digest, -1);
            free(name);
            if (rc != 0) {
                json_decref(cj);
                return -1;
            }
        }
        json_decref(cj);
    }
    return 0;
}

/* ---- pass B: the layers ----------------------------------------------------------- */

/* A layer blob read through the outer reader, hashed as it goes. */
struct nested {
    struct archive *outer;
    struct sha256_ctx sha;
    uint64_t bytes;
    unsigned char buf[64 * 1024];
};

static la_ssize_t nested_read(struct archive *a, void *ctx, const void **out)
{
    (void)a;
    struct nested *n = ctx;
    la_ssize_t r = archive_read_data(n->outer, n->buf, sizeof n->buf);
    if (r > 0) {
        sha256_update(&n->sha, (size_t)r, n->buf);
        n->bytes += (uint64_t)r;
    }
    *out = n->buf;
    return r < 0 ? ARCHIVE_FATAL : r;
}

/* Hashes what is left of the blob (the layer tar's end padding, or what
 * follows the tar a hostile blob appends) and compares with L's digest. */
static bool finish_blob(struct nested *n, const struct layer *l, char got[80])
{
    la_ssize_t r;
    while ((r = archive_read_data(n->outer, n->buf, sizeof n->buf)) > 0) {
        sha256_update(&n->sha, (size_t)r, n->buf);
        n->bytes += (uint64_t)r;
    }
    uint8_t raw[SHA256_DIGEST_SIZE];
    sha256_digest(&n->sha, sizeof raw, raw);
    hex_digest(raw, got);
    return r == 0 && strcmp(got, l->digest) == 0 &&
           (l->size < 0 || n->bytes == (uint64_t)l->size);
}

static struct archive *open_nested(struct nested *n, struct archive *outer)
{
    n->outer = outer;
    n->bytes = 0;
    sha256_init(&n->sha);
    struct archive *in = archive_read_new();
    if (!in)
        return NULL;
    archive_read_support_filter_all(in);
    archive_read_support_format_tar(in);
    if (archive_read_open(in, n, NULL, nested_read, NULL) != ARCHIVE_OK)
        return in; /* the caller reads the error from IN */
    return in;
}

static int add_entry(struct layer *l, struct entry *e)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        struct entry *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *e;
    return 0;
}

static void drop_entries(struct layer *l)
{
    for (size_t k = 0; k < l->n; k++) {
        free(l->v[k].name);
        free(l->v[k].head);
        free(l->v[k].link);
    }
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

/* One entry of layer L (ordinal SEQ) into L's list. Returns 0, 1 to skip,
 * -1 to stop (ENOMEM or the hooks said so). */
static int read_layer_entry(struct image_set *s, struct layer *l, struct archive *in,
                            struct archive_entry *ae, size_t seq, uint64_t *budget)
{
    const char *blob = s->blobs[l->blob].name;
    char detail[PATH_MAX + 200];
    const char *raw = archive_entry_pathname(ae);
    bool top = false;
    char *name = raw ? normalise(raw, &top) : NULL;
    if (!name) {
        if (raw && errno == ENOMEM)
            return -1;
        if (top)
            return 1; /* "./": the top directory itself */
        snprintf(detail, sizeof detail, "layer member '%.*s': unsafe name (absolute or '..'): "
                                        "not applied",
                 PATH_MAX, raw ? raw : "?");
        return s->h->error(s->h->ctx, blob, 0, "judge member", detail) ? -1 : 1;
    }
    struct entry e = {.name = name, .seq = seq, .mtime = (int64_t)archive_entry_mtime(ae),
                      .nsec = archive_entry_mtime_nsec(ae)};
    e.size = archive_entry_size_is_set(ae) ? (int64_t)archive_entry_size(ae) : -1;
    char *slash = strrchr(name, '/');
    char *base = slash ? slash + 1 : name;
    mode_t type = archive_entry_filetype(ae);
    if (strncmp(base, ".wh.", 4) == 0) {
        const char *target = base + 4;
        if (strcmp(target, ".wh..opq") == 0) {
            e.kind = E_OPAQUE;
            if (slash)
                *slash = '\0';
            else
                name[0] = '\0';
        } else if (strncmp(target, ".wh.", 4) == 0) {
            free(name); /* AUFS metadata (.wh..wh.plnk, ...): hidden, no change */
            return 1;
        } else if (!*target || strcmp(target, ".") == 0 || strcmp(target, "..") == 0) {
            snprintf(detail, sizeof detail, "layer member '%.*s': a whiteout of '%s': "
                                            "not applied",
                     PATH_MAX, name, target);
            free(name);
            return s->h->error(s->h->ctx, blob, 0, "judge member", detail) ? -1 : 1;
        } else {
            e.kind = E_WHITEOUT;
            memmove(base, target, strlen(target) + 1);
        }
    } else if (type == AE_IFDIR) {
        e.kind = E_DIR;
    } else if (type == AE_IFREG && !archive_entry_hardlink(ae)) {
        e.kind = E_FILE;
    } else {
        /* Links are resolved inside the image once its file system is
         * built (resolve_links): a source may be a link. */
        e.kind = E_OTHER;
        const char *hard = archive_entry_hardlink(ae), *sym = archive_entry_symlink(ae);
        if (hard) {
            e.link = malloc(strlen(hard) + 2);
            if (e.link) {
                e.link[0] = '/';
                strcpy(e.link + 1, hard);
            }
        } else if (type == AE_IFLNK && sym) {
            e.link = strdup(sym);
        }
        if ((hard || (type == AE_IFLNK && sym)) && !e.link) {
            free(name);
            return -1;
        }
    }
    if (e.kind == E_FILE) {
        bool deep = false;
        size_t want = s->h->head_size(s->h->ctx, name, &deep);
        if (want) {
            /* Grown as the bytes come (--deep asks for up to 256 MiB). */
            size_t alloc = want < 65536 ? want : 65536, n = 0;
            e.head = malloc(alloc);
            if (!e.head) {
                free(name);
                return -1;
            }
            while (n < want) {
                if (n == alloc) {
                    size_t na = alloc * 2 < want ? alloc * 2 : want;
                    unsigned char *nh = realloc(e.head, na);
                    if (!nh) {
                        free(e.head);
                        free(name);
                        return -1;
                    }
                    e.head = nh;
                    alloc = na;
                }
                la_ssize_t r = archive_read_data(in, e.head + n, alloc - n);
                if (r <= 0)
                    break;
                n += (size_t)r;
            }
            e.head_len = n;
            e.head_ok = true;
            if (n > *budget)
                *budget = 0;
            else
                *budget -= n;
            if (deep && n == want) {
                snprintf(detail, sizeof detail, "layer member '%.*s': larger than 256 MiB",
                         PATH_MAX, name);
                e.head_ok = false;
                if (s->h->error(s->h->ctx, blob, EFBIG, "read member", detail)) {
                    free(e.head);
                    free(name);
                    return -1;
                }
            }
        }
    }
    if (add_entry(l, &e) != 0) {
        free(e.head);
        free(e.link);
        free(name);
        return -1;
    }
    return 0;
}

/* Streams the layer blob the outer reader is at into L; verifies it. */
static int read_layer(struct image_set *s, struct layer *l, struct archive *outer,
                      uint64_t *budget)
{
    const char *blob = s->blobs[l->blob].name;
    struct nested *n = malloc(sizeof *n);
    if (!n)
        return fail(s, NULL, ENOMEM, NULL);
    struct archive *in = open_nested(n, outer);
    if (!in) {
        free(n);
        return fail(s, NULL, ENOMEM, NULL);
    }
    uint64_t start = *budget;
    struct archive_entry *ae;
    int rc;
    size_t seq = 0;
    char detail[300];
    bool stop = false;
    while ((rc = archive_read_next_header(in, &ae)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
        uint64_t used = (uint64_t)archive_filter_bytes(in, 0);
        if (used > start || *budget == 0) {
            l->bad = true;
            fail(s, blob, EFBIG, "decompressed size limit reached (PYCACHE_ARCHIVE_MAX_BYTES)");
            stop = true;
            break;
        }
        int er = read_layer_entry(s, l, in, ae, seq++, budget);
        if (er < 0) {
            l->bad = true;
            stop = true;
            break;
        }
    }
    if (!stop && rc != ARCHIVE_EOF) {
        const char *why = archive_error_string(in);
        snprintf(detail, sizeof detail, "layer %.71s is not a readable tar: %s", l->digest,
                 why ? why : "damaged");
        fail(s, blob, EINVAL, detail);
        l->bad = true;
    }
    uint64_t used = (uint64_t)archive_filter_bytes(in, 0);
    *budget = used > start ? 0 : start - used;
    archive_read_free(in);
    char got[80];
    if (!l->bad && !finish_blob(n, l, got)) {
        snprintf(detail, sizeof detail, "layer digest mismatch: the manifest says %.71s, the "
                                        "blob is %s (%llu bytes): nothing judged from it",
                 l->digest, got, (unsigned long long)n->bytes);
        fail(s, blob, EINVAL, detail);
        l->bad = true;
    }
    free(n);
    if (l->bad)
        drop_entries(l);
    l->done = true;
    return stop ? -1 : 0;
}

static int pass_b(struct image_set *s, uint64_t *budget)
{
    int fd;
    struct archive *a = open_outer(s, &fd);
    if (!a)
        return fail(s, NULL, errno, "cannot read the image archive");
    struct archive_entry *e;
    int rc;
    size_t todo = s->nlayers;
    int result = 0;
    while (todo && ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN)) {
        if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e))
            continue;
        const char *raw = archive_entry_pathname(e);
        bool top;
        char *name = raw ? normalise(raw, &top) : NULL;
        if (!name)
            continue;
        struct blob *b = find_blob(s, name);
        free(name);
        if (!b)
            continue;
        for (size_t li = 0; li < s->nlayers; li++) {
            struct layer *l = &s->layers[li];
            /* The last member of the name (pass A's) is the blob. */
            if (l->done || &s->blobs[l->blob] != b ||
                (int64_t)archive_entry_size(e) != b->size)
                continue;
            /* A blob named twice (the same bytes under two digests, which
             * fails one of them) is read once per layer entry: rare. */
            if (read_layer(s, l, a, budget) != 0)
                result = -1;
            todo--;
            break;
        }
        if (result)
            break;
    }
    close_outer(a, fd);
    for (size_t li = 0; li < s->nlayers && !result; li++) {
        if (!s->layers[li].done) {
            s->layers[li].bad = true;
            fail(s, s->blobs[s->layers[li].blob].name, EIO, "the layer blob could not be read");
        }
    }
    return result;
}

/* ---- the file system of one image ------------------------------------------------ */

static size_t hash_name(const char *s)
{
    size_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static size_t *slot_of(struct image_set *s, const char *name)
{
    size_t mask = s->nslots - 1;
    for (size_t i = hash_name(name) & mask;; i = (i + 1) & mask) {
        size_t k = s->slots[i];
        if (!k || strcmp(s->nodes[k - 1].e->name, name) == 0)
            return &s->slots[i];
    }
}

static int grow_slots(struct image_set *s)
{
    size_t ns = s->nslots ? s->nslots * 2 : 1024;
    size_t *slots = calloc(ns, sizeof *slots);
    if (!slots)
        return -1;
    free(s->slots);
    s->slots = slots;
    s->nslots = ns;
    for (size_t k = 0; k < s->nnodes; k++)
        *slot_of(s, s->nodes[k].e->name) = k + 1;
    return 0;
}

static struct node *find_node(struct image_set *s, const char *name)
{
    if (!s->nslots)
        return NULL;
    size_t k = *slot_of(s, name);
    return k && s->nodes[k - 1].alive ? &s->nodes[k - 1] : NULL;
}

static int set_node(struct image_set *s, const struct entry *e, size_t layer)
{
    if ((s->nnodes + 1) * 2 > s->nslots && grow_slots(s) != 0)
        return -1;
    size_t *slot = slot_of(s, e->name);
    if (*slot) {
        struct node *nd = &s->nodes[*slot - 1];
        nd->e = e;
        nd->layer = layer;
        nd->alive = true;
        nd->target = 0;
        return 0;
    }
    if (s->nnodes == s->nodecap) {
        size_t cap = s->nodecap ? s->nodecap * 2 : 1024;
        struct node *v = realloc(s->nodes, cap * sizeof *v);
        if (!v)
            return -1;
        s->nodes = v;
        s->nodecap = cap;
    }
    s->nodes[s->nnodes] = (struct node){e, layer, true, 0};
    *slot = ++s->nnodes;
    return 0;
}

/* A map from (pointer, length) names to a number (a layer position, or, for
 * what one layer removes, whether the path itself goes), open addressing. */
struct name_slot {
    const char *name;
    size_t len;
    size_t pos;
};

struct name_map {
    struct name_slot *slots;
    size_t nslots, n;
};

static struct name_slot *name_slot(const struct name_map *m, const char *name, size_t len)
{
    size_t h = 1469598103934665603u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)name[i]) * 1099511628211u;
    size_t mask = m->nslots - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        struct name_slot *x = &m->slots[i];
        if (!x->name || (x->len == len && memcmp(x->name, name, len) == 0))
            return x;
    }
}

/* Records POS for NAME[0..LEN): the lowest of those recorded (LOWEST), or
 * the highest. 0, or -1 on ENOMEM. */
static int name_put(struct name_map *m, const char *name, size_t len, size_t pos, bool lowest)
{
    if ((m->n + 1) * 2 > m->nslots) {
        size_t ns = m->nslots ? m->nslots * 2 : 1024;
        struct name_map g = {calloc(ns, sizeof *g.slots), ns, 0};
        if (!g.slots)
            return -1;
        for (size_t i = 0; i < m->nslots; i++)
            if (m->slots[i].name) {
                *name_slot(&g, m->slots[i].name, m->slots[i].len) = m->slots[i];
                g.n++;
            }
        free(m->slots);
        *m = g;
    }
    struct name_slot *x = name_slot(m, name, len);
    if (!x->name) {
        *x = (struct name_slot){name, len, pos};
        m->n++;
    } else if (lowest ? pos < x->pos : pos > x->pos) {
        x->pos = pos;
    }
    return 0;
}

/* NAME's recorded position, or SIZE_MAX. */
static size_t name_get(const struct name_map *m, const char *name, size_t len)
{
    if (!m->nslots)
        return SIZE_MAX;
    const struct name_slot *x = name_slot(m, name, len);
    return x->name ? x->pos : SIZE_MAX;
}

/* What one layer removes from the lower ones, in a name map: paths with
 * all below them (whiteouts: 1) or only what is below (0: opaque whiteouts,
 * and directories a non-directory of this layer replaces); a path named
 * both ways keeps 1 (name_put's highest).
 *
 * Whether the lower layers' path NAME goes: NAME itself or one of its
 * directories is removed ("" is the top directory: an opaque whiteout at
 * the top hides everything below it). */
static bool removed(const struct name_map *r, const char *name)
{
    if (name_get(r, "", 0) != SIZE_MAX)
        return true;
    for (const char *p = name;; p++) {
        if (*p == '/' || !*p) {
            size_t self = name_get(r, name, (size_t)(p - name));
            if (self != SIZE_MAX && (*p || self))
                return true;
        }
        if (!*p)
            return false;
    }
}

/* Applies layer LI: first its whiteouts, against the lower layers only
 * ("Whiteout files MUST only apply to resources in lower/parent layers";
 * the opaque one "is applied first ... regardless of the ordering"), then
 * its entries in order (a later entry of a name wins, as tar extracts).
 * "Changeset over existing files": a directory over a directory keeps
 * what is below it; anything else replaces the path whole. One sweep over
 * the paths per layer, whatever the number of whiteouts. */
static int apply_layer(struct image_set *s, size_t li)
{
    const struct layer *l = &s->layers[li];
    struct name_map r = {0};
    int rc = -1;
    for (size_t k = 0; k < l->n; k++) {
        const struct entry *e = &l->v[k];
        if (e->kind == E_WHITEOUT || e->kind == E_OPAQUE) {
            if (name_put(&r, e->name, strlen(e->name), e->kind == E_WHITEOUT, false) != 0)
                goto out;
        } else if (e->kind != E_DIR) {
            const struct node *nd = find_node(s, e->name);
            if (nd && nd->e->kind == E_DIR && name_put(&r, e->name, strlen(e->name), 0, false) != 0)
                goto out;
        }
    }
    for (size_t k = 0; r.n && k < s->nnodes; k++) {
        struct node *nd = &s->nodes[k];
        if (nd->alive && removed(&r, nd->e->name))
            nd->alive = false;
    }
    for (size_t k = 0; k < l->n; k++) {
        const struct entry *e = &l->v[k];
        if (e->kind != E_WHITEOUT && e->kind != E_OPAQUE && set_node(s, e, li) != 0)
            goto out;
    }
    rc = 0;
out:
    free(r.slots);
    return rc;
}

/* Resolves PATH inside the image as the kernel would inside a chroot of
 * it: component by component, a symbolic link's target read from its
 * directory (absolute: from the top), ".." at the top staying there, at
 * most 40 links (Linux's MAXSYMLINKS; more is ELOOP). Returns the regular
 * file's node, or NULL. */
static const struct node *resolve(struct image_set *s, const char *path)
{
    size_t cap = strlen(path) + 2, len = 0;
    char *cur = malloc(cap);        /* resolved so far, "" the top */
    char *rest = strdup(path);      /* still to walk */
    const struct node *found = NULL;
    int hops = 0;
    if (!cur || !rest)
        goto out;
    cur[0] = '\0';
    for (;;) {
        char *p = rest;
        while (*p == '/')
            p++;
        if (!*p) {
            const struct node *nd = len ? find_node(s, cur) : NULL;
            found = nd && nd->e->kind == E_FILE ? nd : NULL;
            goto out;
        }
        char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 1 && p[0] == '.') {
            memmove(rest, p + n, strlen(p + n) + 1);
            continue;
        }
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            char *slash = strrchr(cur, '/');
            len = slash ? (size_t)(slash - cur) : 0;
            cur[len] = '\0';
            memmove(rest, p + n, strlen(p + n) + 1);
            continue;
        }
        if (len + n + 2 > cap) {
            cap = (len + n + 2) * 2;
            char *nc = realloc(cur, cap);
            if (!nc)
                goto out;
            cur = nc;
        }
        size_t before = len;
        if (len)
            cur[len++] = '/';
        memcpy(cur + len, p, n);
        len += n;
        cur[len] = '\0';
        memmove(rest, p + n, strlen(p + n) + 1);
        const struct node *nd = find_node(s, cur);
        if (!nd)
            goto out;
        if (nd->e->kind == E_OTHER && nd->e->link) {
            if (++hops > 40)
                goto out;
            /* The link's target, then what was left to walk. */
            const char *t = nd->e->link;
            char *nr = malloc(strlen(t) + strlen(rest) + 2);
            if (!nr)
                goto out;
            sprintf(nr, "%s/%s", t, rest);
            free(rest);
            rest = nr;
            len = t[0] == '/' ? 0 : before;
            cur[len] = '\0';
        } else if (nd->e->kind != E_DIR && *rest) {
            char *q = rest;
            while (*q == '/')
                q++;
            if (*q)
                goto out; /* a file in the middle of the path */
        }
    }
out:
    free(cur);
    free(rest);
    return found;
}

/* Every link of the built file system that resolves to a regular file gets
 * it as its target: the link is judged as that file (os.stat follows it). */
static void resolve_links(struct image_set *s)
{
    for (size_t k = 0; k < s->nnodes; k++) {
        struct node *nd = &s->nodes[k];
        nd->target = 0;
        if (!nd->alive || nd->e->kind != E_OTHER || !nd->e->link ||
            !s->h->relevant(s->h->ctx, nd->e->name))
            continue;
        const struct node *t = resolve(s, nd->e->name);
        if (t)
            nd->target = (size_t)(t - s->nodes) + 1;
    }
}

static int build(struct image_set *s, size_t i)
{
    if (s->built == i + 1)
        return 0;
    s->nnodes = 0;
    if (s->slots)
        memset(s->slots, 0, s->nslots * sizeof *s->slots);
    s->built = 0;
    const struct image *im = &s->images[i];
    for (size_t k = 0; k < im->n; k++) {
        const struct layer *l = &s->layers[im->layers[k]];
        if (l->bad) {
            char detail[300];
            snprintf(detail, sizeof detail, "image %.71s not judged: its layer %.71s could not "
                                            "be read or verified",
                     im->ref, l->digest);
            return fail(s, NULL, EINVAL, detail);
        }
    }
    for (size_t k = 0; k < im->n; k++)
        if (apply_layer(s, im->layers[k]) != 0)
            return fail(s, NULL, ENOMEM, NULL);
    resolve_links(s);
    s->built = i + 1;
    return 0;
}

int image_files(struct image_set *s, size_t i, int (*fn)(void *ctx, const image_file *f),
                void *ctx)
{
    if (build(s, i) != 0)
        return -1;
    for (size_t k = 0; k < s->nnodes; k++) {
        const struct node *nd = &s->nodes[k];
        if (!nd->alive)
            continue;
        const struct entry *e = nd->e;
        if (e->kind == E_OTHER && e->link && s->h->relevant(s->h->ctx, e->name)) {
            /* A link among sources and caches: a source link is the file
             * it resolves to; a cache link, or one that resolves to no
             * file of the image, is named and not judged. */
            bool deep;
            const char *why = !nd->target ? "a link member that resolves to no file of the image"
                              : s->h->head_size(s->h->ctx, e->name, &deep)
                                  ? "a link member among caches: not followed"
                                  : NULL;
            if (why) {
                int rc = s->h->error(s->h->ctx, e->name, 0, "judge member", why);
                if (rc)
                    return rc;
                continue;
            }
            const struct node *t = &s->nodes[nd->target - 1];
            image_file f = {
                .name = e->name, .type = IMAGE_FILE, .size = t->e->size,
                .mtime = t->e->mtime, .mtime_nsec = t->e->nsec,
                .layer = s->layers[t->layer].digest,
            };
            int rc = fn(ctx, &f);
            if (rc)
                return rc;
            continue;
        }
        image_file f = {
            .name = e->name, .size = e->size, .mtime = e->mtime, .mtime_nsec = e->nsec,
            .head = e->head, .head_len = e->head_len, .head_ok = e->head_ok,
            .layer = s->layers[nd->layer].digest,
            .type = e->kind == E_FILE ? IMAGE_FILE : e->kind == E_DIR ? IMAGE_DIR : IMAGE_OTHER,
        };
        int rc = fn(ctx, &f);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- pass C: source bytes -------------------------------------------------------- */

int image_read(struct image_set *s, size_t i, const char *const *names, size_t n,
               size_t max_bytes, uint64_t *budget,
               void (*got)(void *ctx, size_t k, unsigned char *data, size_t len, int err),
               void *ctx)
{
    if (build(s, i) != 0)
        return -1;
    /* want[k]: the node of names[k]; a layer is streamed when it holds one. */
    const struct node **want = calloc(n ? n : 1, sizeof *want);
    bool *delivered = calloc(n ? n : 1, sizeof *delivered);
    bool *layer_needed = calloc(s->nlayers ? s->nlayers : 1, sizeof *layer_needed);
    int result = 0, fd = -1;
    struct archive *a = NULL;
    if (!want || !delivered || !layer_needed) {
        result = fail(s, NULL, ENOMEM, NULL);
        goto out;
    }
    size_t todo = 0;
    for (size_t k = 0; k < n; k++) {
        want[k] = find_node(s, names[k]);
        if (want[k] && want[k]->target)
            want[k] = &s->nodes[want[k]->target - 1];
        if (!want[k] || want[k]->e->kind != E_FILE) {
            got(ctx, k, NULL, 0, ENOENT);
            delivered[k] = true;
            continue;
        }
        if (!layer_needed[want[k]->layer])
            todo++;
        layer_needed[want[k]->layer] = true;
    }
    if (!todo)
        goto out;
    a = open_outer(s, &fd);
    if (!a) {
        result = fail(s, NULL, errno, "cannot read the image archive");
        goto out;
    }
    struct archive_entry *e;
    int rc;
    while (todo && ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN)) {
        const char *raw = archive_entry_pathname(e);
        bool top;
        char *name = raw && archive_entry_filetype(e) == AE_IFREG ? normalise(raw, &top) : NULL;
        if (!name)
            continue;
        struct blob *b = find_blob(s, name);
        free(name);
        size_t li;
        for (li = 0; li < s->nlayers; li++)
            if (layer_needed[li] && &s->blobs[s->layers[li].blob] == b &&
                (int64_t)archive_entry_size(e) == b->size)
                break;
        if (li == s->nlayers)
            continue;
        layer_needed[li] = false;
        todo--;
        struct layer *l = &s->layers[li];
        struct nested *nb = malloc(sizeof *nb);
        struct archive *in = nb ? open_nested(nb, a) : NULL;
        if (!in) {
            free(nb);
            result = fail(s, NULL, ENOMEM, NULL);
            goto out;
        }
        struct archive_entry *ae;
        size_t seq = 0;
        uint64_t start = *budget;
        /* The data are kept until the blob is verified again: a file
         * changed between the passes is not judged from. */
        unsigned char **data = calloc(n, sizeof *data);
        size_t *lens = calloc(n, sizeof *lens);
        int *errs = calloc(n, sizeof *errs);
        if (!data || !lens || !errs) {
            free(data), free(lens), free(errs);
            archive_read_free(in);
            free(nb);
            result = fail(s, NULL, ENOMEM, NULL);
            goto out;
        }
        while ((rc = archive_read_next_header(in, &ae)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
            size_t this = seq++;
            if ((uint64_t)archive_filter_bytes(in, 0) > start)
                break;
            size_t first = n;
            for (size_t k = 0; k < n; k++) {
                if (delivered[k] || want[k]->layer != li || want[k]->e->seq != this)
                    continue;
                if (first == n) {
                    uint64_t left = start - (uint64_t)archive_filter_bytes(in, 0);
                    data[k] = read_all(in, max_bytes, &lens[k], &left);
                    errs[k] = data[k] ? 0 : errno;
                    first = k;
                    continue;
                }
                /* Another name of the same file (a link to it). */
                errs[k] = errs[first];
                lens[k] = lens[first];
                if (data[first]) {
                    data[k] = malloc(lens[k] ? lens[k] : 1);
                    if (data[k])
                        memcpy(data[k], data[first], lens[k]);
                    else
                        errs[k] = ENOMEM;
                }
            }
        }
        uint64_t used = (uint64_t)archive_filter_bytes(in, 0);
        *budget = used > start ? 0 : start - used;
        archive_read_free(in);
        char gotd[80];
        bool ok = rc == ARCHIVE_EOF && finish_blob(nb, l, gotd);
        if (!ok)
            fail(s, s->blobs[l->blob].name, EIO,
                 "the layer changed or failed on the second reading: its sources are "
                 "not judged from");
        for (size_t k = 0; k < n; k++) {
            if (delivered[k] || want[k]->layer != li)
                continue;
            delivered[k] = true;
            if (ok && data[k]) {
                got(ctx, k, data[k], lens[k], 0);
            } else {
                free(data[k]);
                got(ctx, k, NULL, 0, ok ? (errs[k] ? errs[k] : EIO) : EIO);
            }
        }
        free(data), free(lens), free(errs);
        free(nb);
    }
out:
    for (size_t k = 0; want && delivered && k < n; k++)
        if (!delivered[k])
            got(ctx, k, NULL, 0, EIO);
    if (a)
        close_outer(a, fd);
    free(want);
    free(delivered);
    free(layer_needed);
    return result;
}

/* ---- fixing: a new image ------------------------------------------------------------ */

static int fix_fail(struct image_set *s, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* image_fix's error: the message in s->why, errno ERR (0: the message
 * says it all). Returns -1. */
static int fix_fail(struct image_set *s, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof s->why, fmt, ap);
    va_end(ap);
    errno = err;
    return -1;
}

/* One change as it lands in a layer. */
struct op {
    const image_change *c;
    size_t pos;              /* the layer's position in the image */
    size_t seq;              /* the entry it replaces or drops (its last of
                                that name), or, for an add, the entry it is
                                written after; SIZE_MAX: at the layer's end */
    bool add;
    bool whiteout;           /* a drop that a lower layer would show again:
                                a whiteout in its place (layer.md) */
    bool dir;                /* a drop of a directory */
    size_t order;            /* its index in the changes */
};

/* A layer written anew: an unlinked temporary file holding the blob. */
struct new_layer {
    bool changed;
    int fd;
    uint64_t size;
    char digest[80];         /* the blob's */
    char diff_id[80];        /* the uncompressed tar's */
};

/* The sink a libarchive writer writes to: FD, hashed as it goes. */
struct sink {
    int fd;
    struct sha256_ctx sha;
    uint64_t bytes;
    int err;
};

static la_ssize_t sink_write(struct archive *a, void *ctx, const void *buf, size_t n)
{
    (void)a;
    struct sink *k = ctx;
    const unsigned char *p = buf;
    size_t left = n;
    while (left) {
        ssize_t w = write(k->fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            k->err = errno;
            return -1;
        }
        p += w;
        left -= (size_t)w;
    }
    sha256_update(&k->sha, n, buf);
    k->bytes += n;
    return (la_ssize_t)n;
}

static void sink_digest(struct sink *k, char out[80])
{
    uint8_t raw[SHA256_DIGEST_SIZE];
    sha256_digest(&k->sha, sizeof raw, raw);
    hex_digest(raw, out);
}

/* Frees the writer W, closed first: libarchive 3.6's archive_write_free
 * skips the close of a writer in the FATAL state (a write failed in a
 * header), and its client filter's buffer, freed only by that close, would
 * be lost. A close after a failure may write again; what it writes is
 * discarded with the file. */
static void free_writer(struct archive *w)
{
    archive_write_close(w);
    archive_write_free(w);
}

/* A temporary file in OUTPUT's directory, unlinked at once: a layer being
 * rewritten takes space where the result will be, and nothing is left
 * behind whatever happens. */
static int scratch_file(const char *output)
{
    size_t n = strlen(output);
    char *tmp = malloc(n + 20);
    if (!tmp)
        return -1;
    memcpy(tmp, output, n);
    memcpy(tmp + n, ".layer.XXXXXX", 14);
    int fd = mkstemp(tmp);
    if (fd >= 0)
        unlink(tmp);
    free(tmp);
    return fd;
}

/* The entry's data, all of it (at most ARCHIVE_MAX_MEMBER_BYTES). */
static unsigned char *entry_bytes(struct archive *in, size_t *len, uint64_t *budget)
{
    return read_all(in, (size_t)ARCHIVE_MAX_MEMBER_BYTES, len, budget);
}

static int copy_data(struct archive *in, struct archive *w, uint64_t *budget)
{
    unsigned char buf[65536];
    for (;;) {
        la_ssize_t r = archive_read_data(in, buf, sizeof buf);
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
        if ((uint64_t)r > *budget) {
            errno = EFBIG;
            return -1;
        }
        *budget -= (uint64_t)r;
        if (archive_write_data(w, buf, (size_t)r) != r)
            return -1;
    }
}

/* A new member NAME (the raw name of SRC's directory + its own last part)
 * written after SRC, cloned from it: owner and mtime kept, a regular file
 * of mode 0644 or a directory of 0755, as archive.c's write_added does for
 * an archive. SRC NULL: a fresh entry (owner 0, the mtime MTIME). */
static int write_new_entry(struct archive *w, struct archive_entry *src, const char *raw_dir,
                           size_t raw_dir_len, const char *rel, const image_change *c,
                           int64_t mtime)
{
    size_t rl = strlen(rel);
    char *name = malloc(raw_dir_len + rl + 2);
    struct archive_entry *e = !name ? NULL : src ? archive_entry_clone(src) : archive_entry_new();
    if (!e) {
        free(name);
        errno = ENOMEM;
        return -1;
    }
    memcpy(name, raw_dir, raw_dir_len);
    memcpy(name + raw_dir_len, rel, rl + 1);
    bool dir = c->kind == IMAGE_CHANGE_ADD_DIR;
    if (dir)
        strcat(name, "/");
    archive_entry_set_pathname(e, name);
    archive_entry_set_hardlink(e, NULL);
    archive_entry_set_symlink(e, NULL);
    archive_entry_xattr_clear(e);
    archive_entry_acl_clear(e);
    archive_entry_set_filetype(e, dir ? AE_IFDIR : AE_IFREG);
    archive_entry_set_perm(e, dir ? 0755 : 0644);
    archive_entry_set_size(e, dir ? 0 : (la_int64_t)c->len);
    if (!src)
        archive_entry_set_mtime(e, (time_t)mtime, 0);
    int rc = 0;
    if (archive_write_header(w, e) != ARCHIVE_OK ||
        (!dir && c->len && archive_write_data(w, c->data, c->len) != (la_ssize_t)c->len))
        rc = -1;
    archive_entry_free(e);
    free(name);
    return rc;
}

struct layer_job {
    struct image_set *s;
    const struct image *im;
    size_t pos;
    struct op *ops;          /* this layer's, in change order */
    size_t nops;
    struct name_map byname;  /* file and drop ops by path: op index */
    size_t *adds;            /* the add ops, by the entry they follow (the
                                layer's end last), in change order */
    size_t nadds, next_add;
    struct new_layer *out;
    const char *output;
    uint64_t *budget;
};

static const struct op *op_named(const struct layer_job *j, const char *name)
{
    size_t k = name_get(&j->byname, name, strlen(name));
    return k == SIZE_MAX ? NULL : &j->ops[k];
}

/* Writes the adds of J that go after entry SEQ (SIZE_MAX: the layer's
 * end), cloning SRC (the entry at SEQ, raw name RAW). */
static int write_adds(struct layer_job *j, struct archive *w, size_t seq,
                      struct archive_entry *src, const char *raw)
{
    /* The entries come in order: the adds are walked once. */
    for (; j->next_add < j->nadds && j->ops[j->adds[j->next_add]].seq == seq; j->next_add++) {
        const struct op *o = &j->ops[j->adds[j->next_add]];
        const char *name = o->c->name;
        int rc;
        if (src) {
            /* Beside its source, in the source's spelling ("./app/"). */
            const char *rs = strrchr(raw, '/');
            size_t rdl = rs ? (size_t)(rs - raw) + 1 : 0;
            const char *ss = strrchr(o->c->source, '/');
            size_t sdl = ss ? (size_t)(ss - o->c->source) + 1 : 0;
            rc = write_new_entry(w, src, raw, rdl, name + sdl, o->c, 0);
        } else {
            const struct node *sn = find_node(j->s, o->c->source);
            rc = write_new_entry(w, NULL, "", 0, name, o->c, sn ? sn->e->mtime : 0);
        }
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* cmp_adds' operand: qsort has no context argument (one sort at a time). */
static const struct op *sort_ops;

static int cmp_adds(const void *a, const void *b)
{
    const struct op *x = &sort_ops[*(const size_t *)a], *y = &sort_ops[*(const size_t *)b];
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* One entry of the layer being rewritten: kept, replaced or dropped. */
static int rewrite_entry(struct layer_job *j, struct archive *in, struct archive *w,
                         struct archive_entry *ae, size_t seq)
{
    const char *raw = archive_entry_pathname(ae);
    bool top;
    char *name = raw ? normalise(raw, &top) : NULL;
    const struct op *o = name ? op_named(j, name) : NULL;
    mode_t type = archive_entry_filetype(ae);
    bool file = type == AE_IFREG && !archive_entry_hardlink(ae);
    int rc = 0;
    if (o && o->c->kind == IMAGE_CHANGE_DROP) {
        /* Every entry of the name goes (an earlier one of the same layer
         * would otherwise be what extraction leaves); the last one becomes
         * a whiteout when a lower layer holds the path. */
        if (o->whiteout && seq == o->seq) {
            /* DIR/.wh.BASE in the entry's own spelling (a directory's
             * trailing slash dropped), with its owner and mtime. */
            size_t rl = strlen(raw), rdl = 0;
            while (rl && raw[rl - 1] == '/')
                rl--;
            for (size_t k = rl; k-- > 0;)
                if (raw[k] == '/') {
                    rdl = k + 1;
                    break;
                }
            char *wh = malloc(rl + 8);
            struct archive_entry *e = wh ? archive_entry_clone(ae) : NULL;
            if (!e) {
                free(wh);
                free(name);
                errno = ENOMEM;
                return -1;
            }
            memcpy(wh, raw, rdl);
            memcpy(wh + rdl, ".wh.", 4);
            memcpy(wh + rdl + 4, raw + rdl, rl - rdl);
            wh[rl + 4] = '\0';
            archive_entry_set_pathname(e, wh);
            archive_entry_set_hardlink(e, NULL);
            archive_entry_set_symlink(e, NULL);
            archive_entry_xattr_clear(e);
            archive_entry_acl_clear(e);
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_perm(e, 0644);
            archive_entry_set_size(e, 0);
            rc = archive_write_header(w, e) == ARCHIVE_OK ? 0 : -1;
            archive_entry_free(e);
            free(wh);
        }
        free(name);
        return rc;
    }
    if (o && file && seq == o->seq &&
        (o->c->kind == IMAGE_CHANGE_BYTES || o->c->kind == IMAGE_CHANGE_HEAD)) {
        const unsigned char *data = o->c->data;
        size_t len = o->c->len;
        unsigned char *whole = NULL;
        if (o->c->kind == IMAGE_CHANGE_HEAD) {
            whole = entry_bytes(in, &len, j->budget);
            if (!whole || len < o->c->len) {
                free(whole);
                free(name);
                return fix_fail(j->s, whole ? 0 : errno, "layer member '%.*s': cannot be "
                                "read to replace its header", PATH_MAX, o->c->name);
            }
            memcpy(whole, o->c->data, o->c->len);
            data = whole;
        }
        archive_entry_set_size(ae, (la_int64_t)len);
        if (archive_write_header(w, ae) != ARCHIVE_OK ||
            (len && archive_write_data(w, data, len) != (la_ssize_t)len))
            rc = -1;
        free(whole);
    } else {
        if (archive_write_header(w, ae) != ARCHIVE_OK || copy_data(in, w, j->budget) != 0)
            rc = -1;
    }
    free(name);
    if (rc == 0)
        rc = write_adds(j, w, seq, ae, raw);
    return rc;
}

/* Compresses the uncompressed layer tar in FD with IN's filters into a new
 * scratch file (libarchive's "raw" format: the filters alone). The bytes
 * differ from what the original compressor wrote (another gzip or zstd
 * implementation and header; libarchive's default level: gzip 6, as Docker
 * and containerd compress, zstd 3), which is no harm: a layer is named by
 * the digest of its blob as it is, the uncompressed tar's digest (the
 * diff_id) is what identifies its content, and both are recomputed here
 * and written where the image names them. */
static int compress_layer(struct layer_job *j, struct archive *in, int fd, int *out_fd,
                          struct sink *k)
{
    struct archive *w = archive_write_new();
    struct archive_entry *e = archive_entry_new();
    int rc = -1;
    *out_fd = -1;
    if (!w || !e)
        goto out;
    archive_write_set_format_raw(w);
    for (int i = archive_filter_count(in) - 1; i >= 0; i--) {
        int code = archive_filter_code(in, i);
        if (code != ARCHIVE_FILTER_NONE && archive_write_add_filter(w, code) != ARCHIVE_OK) {
            fix_fail(j->s, 0, "layer %.71s: its compression cannot be written: %s",
                     j->s->layers[j->im->layers[j->pos]].digest,
                     archive_error_string(w) ? archive_error_string(w) : "unsupported");
            goto out;
        }
    }
    /* No gzip timestamp: the same image fixed twice gives the same blob. */
    archive_write_set_filter_option(w, "gzip", "timestamp", NULL);
    archive_write_set_bytes_in_last_block(w, 1);
    *out_fd = scratch_file(j->output);
    if (*out_fd < 0) {
        fix_fail(j->s, errno, "cannot create a temporary file beside the output");
        goto out;
    }
    k->fd = *out_fd;
    sha256_init(&k->sha);
    k->bytes = 0;
    k->err = 0;
    if (archive_write_open(w, k, NULL, sink_write, NULL) != ARCHIVE_OK)
        goto werr;
    archive_entry_set_pathname(e, "layer.tar");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    if (archive_write_header(w, e) != ARCHIVE_OK)
        goto werr;
    if (lseek(fd, 0, SEEK_SET) != 0) {
        fix_fail(j->s, errno, "cannot read a temporary file");
        goto out;
    }
    unsigned char buf[65536];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fix_fail(j->s, errno, "cannot read a temporary file");
            goto out;
        }
        if (r == 0)
            break;
        if (archive_write_data(w, buf, (size_t)r) != r)
            goto werr;
    }
    if (archive_write_close(w) != ARCHIVE_OK)
        goto werr;
    rc = 0;
    goto out;
werr:
    fix_fail(j->s, k->err, "%s", k->err ? "" : archive_error_string(w) ? archive_error_string(w)
                                                                      : "write error");
out:
    if (rc != 0 && *out_fd >= 0) {
        close(*out_fd);
        *out_fd = -1;
    }
    if (w)
        free_writer(w);
    if (e)
        archive_entry_free(e);
    return rc;
}

/* Rewrites the layer blob the outer reader is at, verifying it again as it
 * is read: J->out gets the new blob. */
static int rewrite_layer(struct layer_job *j, struct archive *outer)
{
    struct image_set *s = j->s;
    struct layer *l = &s->layers[j->im->layers[j->pos]];
    struct nested *n = malloc(sizeof *n);
    struct archive *in = n ? open_nested(n, outer) : NULL;
    struct archive *w = NULL;
    int fd = -1, rc = -1;
    struct sink tk = {.fd = -1};
    if (!in) {
        fix_fail(s, ENOMEM, "out of memory");
        goto out;
    }
    fd = scratch_file(j->output);
    if (fd < 0) {
        fix_fail(s, errno, "cannot create a temporary file beside the output");
        goto out;
    }
    tk.fd = fd;
    sha256_init(&tk.sha);
    struct archive_entry *ae;
    int hr = archive_read_next_header(in, &ae);
    w = archive_write_new();
    if (!w) {
        fix_fail(s, ENOMEM, "out of memory");
        goto out;
    }
    if (hr == ARCHIVE_OK || hr == ARCHIVE_WARN) {
        /* The same tar dialect (pax keeps what pax headers carry that
         * libarchive reads: fractional times, xattrs, long names, owner
         * names; a pax record of a kind libarchive ignores is not kept). */
        if (archive_write_set_format(w, archive_format(in)) != ARCHIVE_OK)
            goto werr;
    } else {
        archive_write_set_format(w, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
    }
    if (archive_write_open(w, &tk, NULL, sink_write, NULL) != ARCHIVE_OK)
        goto werr;
    size_t seq = 0;
    uint64_t start = *j->budget;
    while (hr == ARCHIVE_OK || hr == ARCHIVE_WARN) {
        if ((uint64_t)archive_filter_bytes(in, 0) > start) {
            fix_fail(s, EFBIG, "decompressed size limit reached (PYCACHE_ARCHIVE_MAX_BYTES)");
            goto out;
        }
        if (rewrite_entry(j, in, w, ae, seq++) != 0) {
            if (!s->why[0])
                goto werr;
            goto out;
        }
        hr = archive_read_next_header(in, &ae);
    }
    if (hr != ARCHIVE_EOF) {
        fix_fail(s, 0, "layer %.71s is not a readable tar: %s", l->digest,
                 archive_error_string(in) ? archive_error_string(in) : "damaged");
        goto out;
    }
    if (write_adds(j, w, SIZE_MAX, NULL, NULL) != 0 || archive_write_close(w) != ARCHIVE_OK)
        goto werr;
    if (j->next_add != j->nadds) {
        fix_fail(s, 0, "layer %.71s changed since it was read (an entry is missing): nothing "
                 "written", l->digest);
        goto out;
    }
    char got[80];
    if (!finish_blob(n, l, got)) {
        fix_fail(s, 0, "layer %.71s changed since it was read (its blob is now %s): "
                 "nothing written", l->digest, got);
        goto out;
    }
    struct new_layer *nl = j->out;
    sink_digest(&tk, nl->diff_id);
    bool compressed = false;
    for (int i = 0; i < archive_filter_count(in); i++)
        compressed |= archive_filter_code(in, i) != ARCHIVE_FILTER_NONE;
    if (compressed) {
        struct sink ck;
        int cfd;
        if (compress_layer(j, in, fd, &cfd, &ck) != 0)
            goto out;
        close(fd);
        fd = cfd;
        sink_digest(&ck, nl->digest);
        nl->size = ck.bytes;
    } else {
        memcpy(nl->digest, nl->diff_id, sizeof nl->digest);
        nl->size = tk.bytes;
    }
    nl->fd = fd;
    fd = -1;
    rc = 0;
    goto out;
werr:
    fix_fail(s, tk.err, "%s", tk.err ? "" : w && archive_error_string(w)
                                                ? archive_error_string(w) : "write error");
out:
    if (w)
        free_writer(w);
    if (in)
        archive_read_free(in);
    free(n);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Places each change in its layer (struct op). 0, or -1 (s->why). */
static int place_changes(struct image_set *s, const struct image *im, const image_change *c,
                         size_t n, struct op *ops)
{
    struct name_map lower = {0}, upper = {0};
    int rc = -1;
    bool drops = false, adds = false;
    for (size_t k = 0; k < n; k++) {
        drops |= c[k].kind == IMAGE_CHANGE_DROP;
        adds |= c[k].kind == IMAGE_CHANGE_ADD_FILE || c[k].kind == IMAGE_CHANGE_ADD_DIR;
    }
    /* LOWER: each path (and each directory above one) a layer holds, at
     * its lowest position; UPPER: each path a layer touches with anything
     * but a directory entry (files, links, whiteouts), at its highest. */
    for (size_t p = 0; p < im->n && (drops || adds); p++) {
        const struct layer *l = &s->layers[im->layers[p]];
        for (size_t k = 0; k < l->n; k++) {
            const struct entry *e = &l->v[k];
            size_t len = strlen(e->name);
            if (adds && e->kind != E_DIR && name_put(&upper, e->name, len, p, false) != 0)
                goto nomem;
            if (!drops || e->kind == E_WHITEOUT || e->kind == E_OPAQUE)
                continue;
            for (size_t i = len + 1; i-- > 0;)
                if ((i == len || e->name[i] == '/') && name_put(&lower, e->name, i, p, true) != 0)
                    goto nomem;
        }
    }
    for (size_t k = 0; k < n; k++) {
        struct op *o = &ops[k];
        o->c = &c[k];
        bool add = c[k].kind == IMAGE_CHANGE_ADD_FILE || c[k].kind == IMAGE_CHANGE_ADD_DIR;
        const struct node *nd = find_node(s, add ? c[k].source : c[k].name);
        if (!nd) {
            fix_fail(s, 0, "'%.*s' is not in the image", PATH_MAX, add ? c[k].source : c[k].name);
            goto out;
        }
        size_t pos = SIZE_MAX;
        for (size_t p = 0; p < im->n; p++)
            if (im->layers[p] == nd->layer)
                pos = p;
        o->pos = pos;
        o->seq = nd->e->seq;
        o->add = add;
        if (c[k].kind == IMAGE_CHANGE_DROP) {
            o->whiteout = name_get(&lower, c[k].name, strlen(c[k].name)) < pos;
            o->dir = nd->e->kind == E_DIR;
            continue;
        }
        if (!add)
            continue;
        /* An add goes beside its source, in the layer that provides it,
         * unless a layer above touches the new path or a directory between
         * it and the source's directory (a whiteout, an opaque directory, a
         * file): then at the end of the highest such layer, where nothing
         * above hides it. */
        const char *ss = strrchr(c[k].source, '/');
        size_t sdl = ss ? (size_t)(ss - c[k].source) : 0;
        size_t len = strlen(c[k].name), high = SIZE_MAX;
        for (size_t i = len + 1; i-- > sdl + 1;) {
            if (i != len && c[k].name[i] != '/')
                continue;
            size_t q = name_get(&upper, c[k].name, i);
            if (q != SIZE_MAX && q > pos && (high == SIZE_MAX || q > high))
                high = q;
            if (i != len) {
                char dir[PATH_MAX];
                if (i >= sizeof dir)
                    continue;
                memcpy(dir, c[k].name, i);
                dir[i] = '\0';
                const struct node *d = find_node(s, dir);
                if (d && d->e->kind != E_DIR) {
                    fix_fail(s, 0, "cannot add '%.*s': '%.*s' is no directory in the image",
                             PATH_MAX, c[k].name, PATH_MAX, dir);
                    goto out;
                }
            }
        }
        if (high != SIZE_MAX) {
            o->pos = high;
            o->seq = SIZE_MAX;
        }
    }
    /* A whiteout of a directory removes all below it: no whiteouts for the
     * paths below it in the same layer (a map of the directories whited
     * out, by layer; one lookup per directory above each whiteout). */
    struct name_map dirs = {0};
    for (size_t k = 0; k < n; k++)
        if (ops[k].whiteout && ops[k].dir &&
            name_put(&dirs, ops[k].c->name, strlen(ops[k].c->name), ops[k].pos, false) != 0) {
            free(dirs.slots);
            goto nomem;
        }
    for (size_t k = 0; k < n && dirs.n; k++) {
        struct op *o = &ops[k];
        for (size_t i = strlen(o->c->name); o->whiteout && i-- > 0;)
            if (o->c->name[i] == '/' && name_get(&dirs, o->c->name, i) == o->pos)
                o->whiteout = false;
    }
    free(dirs.slots);
    rc = 0;
    goto out;
nomem:
    fix_fail(s, ENOMEM, "out of memory");
out:
    free(lower.slots);
    free(upper.slots);
    return rc;
}

/* A member of the image archive written anew: OLD_NAME's place, NEW_NAME,
 * bytes from DATA or from the scratch file FD. */
struct replacement {
    const char *old_name;
    char *new_name;
    char old_digest[80], new_digest[80]; /* "" for index.json, manifest.json */
    int64_t new_size;
    char *data;
    size_t len;
    int fd;                  /* -1: DATA */
    uint64_t fd_size;
    bool written;
};

struct fix_state {
    struct image_set *s;
    const struct image *im;
    struct replacement *v;
    size_t n;
    char **drops;            /* blobs no longer referenced */
    size_t ndrops;
};

static struct replacement *add_replacement(struct fix_state *f)
{
    struct replacement *v = realloc(f->v, (f->n + 1) * sizeof *v);
    if (!v)
        return NULL;
    f->v = v;
    struct replacement *r = &v[f->n++];
    memset(r, 0, sizeof *r);
    r->fd = -1;
    return r;
}

static const struct replacement *replacement_of(const struct fix_state *f, const char *name)
{
    for (size_t k = 0; k < f->n; k++)
        if (strcmp(f->v[k].old_name, name) == 0)
            return &f->v[k];
    return NULL;
}

/* The new name of the blob OLD, whose digest goes from OLD_DIGEST to
 * DIGEST: a name that is the old digest's hex (blobs/sha256/HEX, a
 * docker-save HEX.json config, skopeo's HEX.tar layers) gets the new hex;
 * any other name (a legacy ID/layer.tar, named by a v1 ID) stays. */
static char *new_blob_name(const char *old, const char *old_digest, const char *digest)
{
    const char *slash = strrchr(old, '/');
    const char *base = slash ? slash + 1 : old;
    char *out = strdup(old);
    if (out && strncmp(base, old_digest + 7, 64) == 0 && strlen(old_digest) == 7 + 64)
        memcpy(out + (base - old), digest + 7, 64);
    return out;
}

/* Every descriptor (an object with a "digest") below J that names a blob
 * replaced gets the new digest and size. */
static int update_descriptors(json_t *j, const struct fix_state *f)
{
    if (json_is_array(j)) {
        for (size_t k = 0; k < json_array_size(j); k++)
            if (update_descriptors(json_array_get(j, k), f) != 0)
                return -1;
        return 0;
    }
    if (!json_is_object(j))
        return 0;
    const char *d = str_field(j, "digest");
    for (size_t k = 0; d && k < f->n; k++) {
        const struct replacement *r = &f->v[k];
        if (!r->old_digest[0] || strcmp(d, r->old_digest) != 0)
            continue;
        if (json_object_set_new(j, "digest", json_string(r->new_digest)) != 0)
            return -1;
        if (json_is_integer(json_object_get(j, "size")) &&
            json_object_set_new(j, "size", json_integer(r->new_size)) != 0)
            return -1;
        break;
    }
    const char *key;
    json_t *val;
    json_object_foreach(j, key, val) {
        if (update_descriptors(val, f) != 0)
            return -1;
    }
    return 0;
}

static int add_drop(struct fix_state *f, const char *digest)
{
    if (!valid_digest(digest))
        return 0;
    /* A blob the fixed image still names (an attestation may share one
     * with it) stays. */
    for (size_t p = 0; p < f->im->n; p++)
        if (strcmp(f->s->layers[f->im->layers[p]].digest, digest) == 0)
            return 0;
    for (size_t k = 0; k < f->n; k++)
        if (strcmp(f->v[k].new_digest, digest) == 0)
            return 0;
    char **v = realloc(f->drops, (f->ndrops + 1) * sizeof *v);
    if (!v)
        return -1;
    f->drops = v;
    v[f->ndrops] = malloc(13 + 64 + 1);
    if (!v[f->ndrops])
        return -1;
    snprintf(v[f->ndrops++], 13 + 64 + 1, "blobs/sha256/%s", digest + 7);
    return 0;
}

/* Collects the digests of the descriptors below J (an attestation
 * manifest's config and layers) as drops. */
static int drop_descriptors(struct fix_state *f, json_t *j)
{
    if (json_is_array(j)) {
        for (size_t k = 0; k < json_array_size(j); k++)
            if (drop_descriptors(f, json_array_get(j, k)) != 0)
                return -1;
        return 0;
    }
    if (!json_is_object(j))
        return 0;
    const char *d = str_field(j, "digest");
    if (d && add_drop(f, d) != 0)
        return -1;
    const char *key;
    json_t *val;
    json_object_foreach(j, key, val) {
        if (drop_descriptors(f, val) != 0)
            return -1;
    }
    return 0;
}

/* An index's attestation manifests of the manifest OLD (BuildKit's:
 * annotations vnd.docker.reference.type = attestation-manifest and
 * vnd.docker.reference.digest = OLD) attest an image that is no longer
 * there: their descriptors and blobs go. */
static int drop_attestations(struct fix_state *f, json_t *index, const char *old)
{
    json_t *m = json_object_get(index, "manifests");
    for (size_t k = json_array_size(m); k-- > 0;) {
        json_t *d = json_array_get(m, k);
        json_t *ann = json_object_get(d, "annotations");
        const char *type = json_is_object(ann) ? str_field(ann, "vnd.docker.reference.type")
                                               : NULL;
        const char *ref = json_is_object(ann) ? str_field(ann, "vnd.docker.reference.digest")
                                              : NULL;
        if (!type || strcmp(type, "attestation-manifest") != 0 || !ref || strcmp(ref, old) != 0)
            continue;
        const char *digest = str_field(d, "digest");
        if (digest && valid_digest(digest)) {
            char blob[96];
            snprintf(blob, sizeof blob, "blobs/sha256/%s", digest + 7);
            const struct blob *b = find_blob(f->s, blob);
            if (add_drop(f, digest) != 0)
                return -1;
            json_error_t err;
            json_t *am = b && b->data ? json_loadb((const char *)b->data, b->len, 0, &err) : NULL;
            int rc = am ? drop_descriptors(f, am) : 0;
            json_decref(am);
            if (rc != 0)
                return -1;
        }
        if (json_array_remove(m, k) != 0)
            return -1;
    }
    return 0;
}

/* The JSON blob NAME, parsed (read and checked in pass A). */
static json_t *parse_blob(struct fix_state *f, const char *name)
{
    const struct blob *b = find_blob(f->s, name);
    json_error_t err;
    json_t *j = b && b->data ? json_loadb((const char *)b->data, b->len, 0, &err) : NULL;
    if (!j)
        fix_fail(f->s, 0, "'%.*s' cannot be read again as JSON", PATH_MAX, name);
    return j;
}

/* J, serialised (compact, keys in their order), as the replacement of
 * NAME: a blob (DIGESTED: renamed by its new digest) or a file of the
 * layout. Takes J. */
static int replace_json(struct fix_state *f, const char *name, json_t *j, bool digested)
{
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    struct replacement *r = text ? add_replacement(f) : NULL;
    if (!r) {
        free(text);
        return fix_fail(f->s, ENOMEM, "out of memory");
    }
    r->old_name = name;
    r->data = text;
    r->len = strlen(text);
    r->new_size = (int64_t)r->len;
    if (digested) {
        const struct blob *b = find_blob(f->s, name);
        uint8_t raw[SHA256_DIGEST_SIZE];
        struct sha256_ctx c;
        sha256_init(&c);
        sha256_update(&c, b->len, b->data);
        sha256_digest(&c, sizeof raw, raw);
        hex_digest(raw, r->old_digest);
        sha256_init(&c);
        sha256_update(&c, r->len, (const uint8_t *)text);
        sha256_digest(&c, sizeof raw, raw);
        hex_digest(raw, r->new_digest);
        r->new_name = new_blob_name(name, r->old_digest, r->new_digest);
    } else {
        r->new_name = strdup(name);
    }
    return r->new_name ? 0 : fix_fail(f->s, ENOMEM, "out of memory");
}

/* A docker-save manifest.json: its Config and Layers paths of blobs
 * replaced get the new names. */
static int update_docker_manifest(struct fix_state *f, json_t *m)
{
    for (size_t i = 0; i < json_array_size(m); i++) {
        json_t *o = json_array_get(m, i);
        json_t *cfg = json_object_get(o, "Config");
        json_t *layers = json_object_get(o, "Layers");
        json_t *paths[1 + 1024];
        size_t np = 0;
        if (json_is_string(cfg))
            paths[np++] = cfg;
        for (size_t k = 0; k < json_array_size(layers) && np < sizeof paths / sizeof *paths; k++)
            paths[np++] = json_array_get(layers, k);
        for (size_t k = 0; k < np; k++) {
            if (!json_is_string(paths[k]))
                continue;
            bool top;
            char *name = normalise(json_string_value(paths[k]), &top);
            const struct replacement *r = name ? replacement_of(f, name) : NULL;
            free(name);
            if (r && json_string_set(paths[k], r->new_name) != 0)
                return fix_fail(f->s, ENOMEM, "out of memory");
        }
    }
    return 0;
}

/* The JSON that names the changed layers, rewritten (see image.h). */
static int rewrite_json(struct fix_state *f, const struct new_layer *nl)
{
    struct image_set *s = f->s;
    const struct image *im = f->im;
    if (!im->config)
        return fix_fail(s, 0, "the image's config blob is not known: nothing written");
    /* The config: rootfs.diff_ids, one per layer, bottom first. */
    json_t *cfg = parse_blob(f, im->config);
    if (!cfg)
        return -1;
    json_t *ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
    if (!json_is_array(ids) || json_array_size(ids) != im->n) {
        json_decref(cfg);
        return fix_fail(s, 0, "the config's rootfs.diff_ids does not list the image's %zu "
                        "layers: nothing written", im->n);
    }
    for (size_t p = 0; p < im->n; p++)
        if (nl[p].changed && json_array_set_new(ids, p, json_string(nl[p].diff_id)) != 0) {
            json_decref(cfg);
            return fix_fail(s, ENOMEM, "out of memory");
        }
    if (replace_json(f, im->config, cfg, true) != 0)
        return -1;
    if (im->manifest) {
        /* OCI: the manifest, each nested index up, index.json. */
        const char *old = im->ref;
        json_t *m = parse_blob(f, im->manifest);
        if (!m || update_descriptors(m, f) != 0 || replace_json(f, im->manifest, m, true) != 0)
            return -1;
        for (size_t k = im->nchain + 1; k-- > 0;) {
            const char *name = k ? im->chain[k - 1] : "index.json";
            json_t *j = parse_blob(f, name);
            if (!j || update_descriptors(j, f) != 0 || drop_attestations(f, j, old) != 0)
                return j ? fix_fail(s, ENOMEM, "out of memory") : -1;
            if (replace_json(f, name, j, k > 0) != 0)
                return -1;
            old = f->v[f->n - 1].old_digest;
        }
    }
    /* A docker-save manifest.json (docker 25+ writes one beside its OCI
     * layout; the legacy form has only it). */
    const struct blob *b = find_blob(s, "manifest.json");
    if (b && b->data) {
        json_error_t err;
        json_t *m = json_loadb((const char *)b->data, b->len, 0, &err);
        if (m && json_is_array(m)) {
            if (update_docker_manifest(f, m) != 0) {
                json_decref(m);
                return -1;
            }
            return replace_json(f, "manifest.json", m, false);
        }
        json_decref(m);
    }
    return 0;
}

static bool dropped(const struct fix_state *f, const char *name)
{
    for (size_t k = 0; k < f->ndrops; k++)
        if (strcmp(f->drops[k], name) == 0)
            return true;
    return false;
}

/* Writes R's bytes as the entry E (its raw name's last part renamed). */
static int write_replacement(struct fix_state *f, struct archive *w, struct archive_entry *ae,
                             struct replacement *r)
{
    const char *raw = archive_entry_pathname(ae);
    const char *rs = strrchr(raw, '/');
    size_t rdl = rs ? (size_t)(rs - raw) + 1 : 0;
    const char *ns = strrchr(r->new_name, '/');
    const char *nb = ns ? ns + 1 : r->new_name;
    char *name = malloc(rdl + strlen(nb) + 1);
    struct archive_entry *e = name ? archive_entry_clone(ae) : NULL;
    if (!e) {
        free(name);
        return fix_fail(f->s, ENOMEM, "out of memory");
    }
    memcpy(name, raw, rdl);
    strcpy(name + rdl, nb);
    archive_entry_set_pathname(e, name);
    uint64_t size = r->fd >= 0 ? r->fd_size : r->len;
    archive_entry_set_size(e, (la_int64_t)size);
    int rc = archive_write_header(w, e) == ARCHIVE_OK ? 0 : -1;
    if (rc == 0 && r->fd < 0 && r->len)
        rc = archive_write_data(w, r->data, r->len) == (la_ssize_t)r->len ? 0 : -1;
    if (rc == 0 && r->fd >= 0) {
        unsigned char buf[65536];
        uint64_t left = size;
        off_t at = 0;
        while (rc == 0 && left) {
            ssize_t n = pread(r->fd, buf, left < sizeof buf ? (size_t)left : sizeof buf, at);
            if (n <= 0) {
                rc = fix_fail(f->s, n < 0 ? errno : EIO, "cannot read a temporary file");
                break;
            }
            if (archive_write_data(w, buf, (size_t)n) != n)
                rc = -1;
            left -= (uint64_t)n;
            at += n;
        }
    }
    archive_entry_free(e);
    free(name);
    r->written = true;
    return rc;
}

/* The image archive with F's replacements, into a temporary file beside
 * OUTPUT renamed over it once complete. */
static int write_archive(struct fix_state *f, const char *output, uint64_t *budget)
{
    struct image_set *s = f->s;
    int afd, fd = -1, rc = -1;
    struct archive *a = open_outer(s, &afd), *w = NULL;
    size_t olen = strlen(output);
    char *tmp = malloc(olen + 16);
    if (!a || !tmp) {
        fix_fail(s, a ? ENOMEM : errno, "cannot read the image archive again");
        goto out;
    }
    memcpy(tmp, output, olen);
    memcpy(tmp + olen, ".tmp.XXXXXX", 12);
    fd = mkstemp(tmp);
    if (fd < 0) {
        fix_fail(s, errno, "cannot create '%.*s'", PATH_MAX, tmp);
        goto out;
    }
    struct archive_entry *e;
    int hr = archive_read_next_header(a, &e);
    w = archive_write_new();
    if (!w)
        goto werr;
    if (archive_write_set_format(w, hr == ARCHIVE_OK || hr == ARCHIVE_WARN
                                        ? archive_format(a)
                                        : ARCHIVE_FORMAT_TAR_PAX_RESTRICTED) != ARCHIVE_OK)
        goto werr;
    for (int i = archive_filter_count(a) - 1; i >= 0; i--) {
        int code = archive_filter_code(a, i);
        if (code != ARCHIVE_FILTER_NONE && archive_write_add_filter(w, code) != ARCHIVE_OK)
            goto werr;
    }
    if (archive_write_open_fd(w, fd) != ARCHIVE_OK)
        goto werr;
    while (hr == ARCHIVE_OK || hr == ARCHIVE_WARN) {
        const char *raw = archive_entry_pathname(e);
        bool top;
        char *name = raw && archive_entry_filetype(e) == AE_IFREG && !archive_entry_hardlink(e)
                         ? normalise(raw, &top)
                         : NULL;
        struct replacement *r = NULL;
        for (size_t k = 0; name && k < f->n; k++)
            if (strcmp(f->v[k].old_name, name) == 0)
                r = &f->v[k];
        bool drop = name && !r && dropped(f, name);
        free(name);
        if (r) {
            /* Written once, where the old one was. */
            if (!r->written && write_replacement(f, w, e, r) != 0)
                goto werr;
        } else if (!drop) {
            if (archive_write_header(w, e) != ARCHIVE_OK || copy_data(a, w, budget) != 0)
                goto werr;
        }
        hr = archive_read_next_header(a, &e);
    }
    if (hr != ARCHIVE_EOF) {
        fix_fail(s, 0, "the image archive cannot be read again: %s",
                 archive_error_string(a) ? archive_error_string(a) : "damaged");
        goto out;
    }
    for (size_t k = 0; k < f->n; k++)
        if (!f->v[k].written) {
            fix_fail(s, 0, "'%.*s' was not found again in the image archive: nothing written",
                     PATH_MAX, f->v[k].old_name);
            goto out;
        }
    if (archive_write_close(w) != ARCHIVE_OK)
        goto werr;
    struct stat st;
    /* The image's permissions (from a layout directory: a file's 0644). */
    if ((stat(s->path, &st) == 0 && fchmod(fd, s->is_dir ? 0644 : st.st_mode & 07777) != 0) ||
        fsync(fd) != 0) {
        fix_fail(s, errno, "cannot write '%.*s'", PATH_MAX, tmp);
        goto out;
    }
    if (rename(tmp, output) != 0) {
        fix_fail(s, errno, "cannot rename '%.*s' to '%.*s'", PATH_MAX, tmp, PATH_MAX, output);
        goto out;
    }
    rc = 0;
    goto out;
werr:
    if (!s->why[0]) {
        int err = w ? archive_errno(w) : ENOMEM;
        fix_fail(s, err > 0 ? err : 0, "%s",
                 err > 0 ? "" : w && archive_error_string(w) ? archive_error_string(w)
                                                             : "write error");
    }
out:
    if (rc != 0 && fd >= 0)
        unlink(tmp);
    if (w)
        free_writer(w);
    if (fd >= 0)
        close(fd);
    if (a)
        close_outer(a, afd);
    free(tmp);
    return rc;
}

/* Writes the bytes of R to a new file PATH (a temporary name beside it,
 * renamed over it once complete and synced). */
static int write_file_atomically(struct fix_state *f, const char *path, struct replacement *r)
{
    size_t len = strlen(path);
    char *tmp = malloc(len + 16);
    if (!tmp)
        return fix_fail(f->s, ENOMEM, "out of memory");
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fix_fail(f->s, errno, "cannot create '%.*s'", PATH_MAX, tmp);
        free(tmp);
        return -1;
    }
    int rc = 0;
    uint64_t size = r->fd >= 0 ? r->fd_size : r->len, at = 0;
    unsigned char buf[65536];
    while (rc == 0 && at < size) {
        const unsigned char *p;
        size_t n = size - at < sizeof buf ? (size_t)(size - at) : sizeof buf;
        if (r->fd >= 0) {
            ssize_t got = pread(r->fd, buf, n, (off_t)at);
            if (got <= 0) {
                rc = fix_fail(f->s, got < 0 ? errno : EIO, "cannot read a temporary file");
                break;
            }
            n = (size_t)got;
            p = buf;
        } else {
            p = (const unsigned char *)r->data + at;
        }
        for (size_t done = 0; rc == 0 && done < n;) {
            ssize_t w = write(fd, p + done, n - done);
            if (w < 0 && errno != EINTR)
                rc = fix_fail(f->s, errno, "cannot write '%.*s'", PATH_MAX, tmp);
            else if (w > 0)
                done += (size_t)w;
        }
        at += n;
    }
    if (rc == 0 && (fchmod(fd, 0644) != 0 || fsync(fd) != 0))
        rc = fix_fail(f->s, errno, "cannot write '%.*s'", PATH_MAX, tmp);
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = fix_fail(f->s, errno, "cannot rename '%.*s' to '%.*s'", PATH_MAX, tmp, PATH_MAX,
                      path);
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    r->written = rc == 0;
    return rc;
}

/* --in-place on a layout directory: the new blobs are added to it, then
 * index.json is replaced (atomically, last: until then the layout is the
 * old image, with some blobs it does not name yet). The blobs replaced stay
 * until the user's garbage collection (umoci gc, or skopeo copy to a new
 * layout): another index in the same directory may name them. */
static int write_layout(struct fix_state *f)
{
    const char *dir = f->s->path;
    struct replacement *index = NULL;
    for (size_t k = 0; k < f->n; k++) {
        struct replacement *r = &f->v[k];
        if (strcmp(r->old_name, "index.json") == 0) {
            index = r;
            continue;
        }
        if (strcmp(r->old_name, "manifest.json") == 0)
            continue; /* not read from a directory */
        size_t len = strlen(dir) + strlen(r->new_name) + 2;
        char *path = malloc(len);
        if (!path)
            return fix_fail(f->s, ENOMEM, "out of memory");
        snprintf(path, len, "%s/%s", dir, r->new_name);
        int rc = write_file_atomically(f, path, r);
        free(path);
        if (rc != 0)
            return -1;
    }
    if (!index)
        return 0;
    size_t len = strlen(dir) + sizeof "/index.json";
    char *path = malloc(len);
    if (!path)
        return fix_fail(f->s, ENOMEM, "out of memory");
    snprintf(path, len, "%s/index.json", dir);
    int rc = write_file_atomically(f, path, index);
    free(path);
    return rc;
}

int image_fix(struct image_set *s, size_t i, const image_change *changes, size_t n,
              const char *output, uint64_t *budget, const char **why)
{
    s->why[0] = '\0';
    *why = s->why;
    if (!s->path)
        return fix_fail(s, EINVAL, "an image in memory is not rewritten");
    if (build(s, i) != 0)
        return fix_fail(s, 0, "the image could not be read: nothing written");
    const struct image *im = &s->images[i];
    for (size_t p = 0; p < im->n; p++)
        for (size_t q = p + 1; q < im->n; q++)
            if (im->layers[p] == im->layers[q])
                return fix_fail(s, 0, "the image names its layer %.71s twice: not rewritten",
                                s->layers[im->layers[p]].digest);
    struct op *ops = calloc(n ? n : 1, sizeof *ops);
    struct layer_job *jobs = calloc(im->n, sizeof *jobs);
    struct new_layer *nl = calloc(im->n, sizeof *nl);
    struct fix_state f = {.s = s, .im = im};
    int rc = -1, afd = -1;
    struct archive *a = NULL;
    for (size_t p = 0; nl && p < im->n; p++)
        nl[p].fd = -1;
    if (!ops || !jobs || !nl) {
        fix_fail(s, ENOMEM, "out of memory");
        goto out;
    }
    if (place_changes(s, im, changes, n, ops) != 0)
        goto out;
    /* Each layer's ops, in change order (adds keep theirs). */
    for (size_t k = 0; k < n; k++) {
        struct layer_job *j = &jobs[ops[k].pos];
        if (!j->ops) {
            j->ops = calloc(n, sizeof *j->ops);
            if (!j->ops) {
                fix_fail(s, ENOMEM, "out of memory");
                goto out;
            }
        }
        if (!ops[k].add &&
            name_put(&j->byname, ops[k].c->name, strlen(ops[k].c->name), j->nops, false) != 0) {
            fix_fail(s, ENOMEM, "out of memory");
            goto out;
        }
        ops[k].order = k;
        j->ops[j->nops++] = ops[k];
    }
    for (size_t p = 0; p < im->n; p++) {
        struct layer_job *j = &jobs[p];
        size_t na = 0;
        for (size_t k = 0; k < j->nops; k++)
            na += j->ops[k].add;
        if (!na)
            continue;
        j->adds = malloc(na * sizeof *j->adds);
        if (!j->adds) {
            fix_fail(s, ENOMEM, "out of memory");
            goto out;
        }
        for (size_t k = 0; k < j->nops; k++)
            if (j->ops[k].add)
                j->adds[j->nadds++] = k;
        sort_ops = j->ops; /* qsort has no context argument */
        qsort(j->adds, j->nadds, sizeof *j->adds, cmp_adds);
    }
    size_t todo = 0;
    for (size_t p = 0; p < im->n; p++) {
        jobs[p].s = s;
        jobs[p].im = im;
        jobs[p].pos = p;
        jobs[p].out = &nl[p];
        jobs[p].output = output;
        jobs[p].budget = budget;
        nl[p].changed = jobs[p].nops > 0;
        todo += nl[p].changed;
    }
    /* The changed layers, each streamed from the archive again. */
    a = todo ? open_outer(s, &afd) : NULL;
    if (todo && !a) {
        fix_fail(s, errno, "cannot read the image archive again");
        goto out;
    }
    struct archive_entry *e;
    int hr;
    while (todo && ((hr = archive_read_next_header(a, &e)) == ARCHIVE_OK || hr == ARCHIVE_WARN)) {
        if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e))
            continue;
        const char *raw = archive_entry_pathname(e);
        bool top;
        char *name = raw ? normalise(raw, &top) : NULL;
        struct blob *b = name ? find_blob(s, name) : NULL;
        free(name);
        for (size_t p = 0; b && p < im->n; p++) {
            if (!nl[p].changed || nl[p].fd >= 0 || &s->blobs[s->layers[im->layers[p]].blob] != b ||
                (int64_t)archive_entry_size(e) != b->size)
                continue;
            if (rewrite_layer(&jobs[p], a) != 0)
                goto out;
            todo--;
            break;
        }
    }
    if (todo) {
        fix_fail(s, 0, "a layer blob was not found again in the image archive: nothing written");
        goto out;
    }
    if (a) {
        close_outer(a, afd);
        a = NULL;
    }
    /* The layers' replacements, then the JSON that names them. */
    for (size_t p = 0; p < im->n; p++) {
        if (!nl[p].changed)
            continue;
        const struct layer *l = &s->layers[im->layers[p]];
        struct replacement *r = add_replacement(&f);
        if (!r) {
            fix_fail(s, ENOMEM, "out of memory");
            goto out;
        }
        r->old_name = s->blobs[l->blob].name;
        snprintf(r->old_digest, sizeof r->old_digest, "%s", l->digest);
        snprintf(r->new_digest, sizeof r->new_digest, "%s", nl[p].digest);
        r->new_size = (int64_t)nl[p].size;
        r->fd = nl[p].fd;
        r->fd_size = nl[p].size;
        r->new_name = new_blob_name(r->old_name, r->old_digest, r->new_digest);
        if (!r->new_name) {
            fix_fail(s, ENOMEM, "out of memory");
            goto out;
        }
    }
    if (todo == 0 && f.n && rewrite_json(&f, nl) != 0)
        goto out;
    if (s->is_dir && strcmp(output, s->path) == 0)
        rc = write_layout(&f);
    else
        rc = write_archive(&f, output, budget);
out:
    if (a)
        close_outer(a, afd);
    for (size_t k = 0; k < f.n; k++) {
        free(f.v[k].new_name);
        free(f.v[k].data);
    }
    free(f.v);
    for (size_t k = 0; k < f.ndrops; k++)
        free(f.drops[k]);
    free(f.drops);
    for (size_t p = 0; jobs && p < im->n; p++) {
        free(jobs[p].ops);
        free(jobs[p].adds);
        free(jobs[p].byname.slots);
    }
    for (size_t p = 0; nl && p < im->n; p++)
        if (nl[p].fd >= 0)
            close(nl[p].fd);
    free(jobs);
    free(nl);
    free(ops);
    return rc;
}

/* ---- opening ------------------------------------------------------------------------ */

size_t image_count(const struct image_set *s)
{
    return s->nimages;
}

const char *image_ref(const struct image_set *s, size_t i)
{
    return s->images[i].ref;
}

void image_free(struct image_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nblobs; i++) {
        free(s->blobs[i].name);
        free(s->blobs[i].data);
    }
    free(s->blobs);
    for (size_t i = 0; i < s->nlayers; i++)
        drop_entries(&s->layers[i]);
    free(s->layers);
    for (size_t i = 0; i < s->nimages; i++) {
        free(s->images[i].ref);
        free(s->images[i].layers);
        free(s->images[i].manifest);
        free(s->images[i].config);
        for (size_t k = 0; k < s->images[i].nchain; k++)
            free(s->images[i].chain[k]);
    }
    free(s->images);
    free(s->nodes);
    free(s->slots);
    dirtar_free(s->dirtar);
    free(s);
}

int image_open(const char *path, const void *mem, size_t len, uint64_t *budget,
               const image_hooks *hooks, struct image_set **out)
{
    *out = NULL;
    struct image_set *s = calloc(1, sizeof *s);
    if (!s) {
        hooks->error(hooks->ctx, NULL, ENOMEM, "read image", NULL);
        return -1;
    }
    s->path = path;
    s->mem = mem;
    s->mem_len = len;
    s->h = hooks;
    struct stat st;
    s->is_dir = path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    int rc = -1;
    if (pass_a(s, budget) != 0)
        goto out;
    if (find_blob(s, "oci-layout")) {
        /* An OCI image layout (image-spec image-layout.md). */
        json_t *layout = load_json(s, "oci-layout", NULL, -1);
        if (!layout)
            goto out;
        bool ok = json_is_object(layout) && str_field(layout, "imageLayoutVersion");
        json_decref(layout);
        if (!ok) {
            fail(s, "oci-layout", EINVAL, "no imageLayoutVersion: not an OCI image layout");
            goto out;
        }
        json_t *index = load_json(s, "index.json", NULL, -1);
        if (!index)
            goto out;
        int wr = walk_index(s, index, 0);
        json_decref(index);
        if (wr != 0)
            goto out;
    } else {
        struct blob *b = find_blob(s, "manifest.json");
        if (!b || !b->data) {
            rc = 0;
            goto out;
        }
        json_error_t err;
        json_t *m = json_loadb((const char *)b->data, b->len, 0, &err);
        if (!m) {
            rc = 0; /* a file of that name, not docker's */
            goto out;
        }
        int dr = read_docker_manifest(s, m);
        json_decref(m);
        if (dr != 0) {
            rc = dr > 0 ? 0 : -1;
            goto out;
        }
    }
    if (s->nimages == 0) {
        fail(s, NULL, ENOENT, "the index names no image whose manifest the archive holds");
        goto out;
    }
    if (pass_b(s, budget) != 0)
        goto out;
    *out = s;
    return 1;
out:
    image_free(s);
    return rc;
}

#endif /* PYC_HAVE_LIBARCHIVE */
