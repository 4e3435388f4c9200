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
 * The layer rules are the OCI image-spec's layer.md (opencontainers/
 * image-spec, "Applying Changesets", "Changeset over existing files",
 * "Whiteouts", "Opaque Whiteout"), summarised in image.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    if (s->path) {
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
static int read_manifest(struct image_set *s, const char *digest, json_t *m)
{
    json_t *layers = json_object_get(m, "layers");
    if (!json_is_array(layers))
        return fail(s, NULL, EINVAL, "an image manifest without a layers array");
    struct image *im = new_image(s, digest);
    if (!im)
        return -1;
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
        char blob[96];
        snprintf(blob, sizeof blob, "blobs/sha256/%s", ld + 7);
        if (add_layer(s, im, blob, ld, (int64_t)json_integer_value(size)) != 0)
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
    int rc = is_index_type(type) ? walk_index(s, j, depth + 1) : read_manifest(s, digest, j);
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

/* What one layer removes from the lower ones: paths with all below them
 * (whiteouts: SELF) or only what is below (opaque whiteouts, and
 * directories a non-directory of this layer replaces). */
struct removal {
    const char *name;
    size_t len;
    bool self;
};

struct removals {
    struct removal *slots;
    size_t nslots, n;
};

static struct removal *removal_slot(const struct removals *r, const char *name, size_t len)
{
    size_t h = 1469598103934665603u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)name[i]) * 1099511628211u;
    size_t mask = r->nslots - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        struct removal *x = &r->slots[i];
        if (!x->name || (x->len == len && memcmp(x->name, name, len) == 0))
            return x;
    }
}

static int add_removal(struct removals *r, const char *name, bool self)
{
    if ((r->n + 1) * 2 > r->nslots) {
        size_t ns = r->nslots ? r->nslots * 2 : 64;
        struct removals g = {calloc(ns, sizeof *g.slots), ns, 0};
        if (!g.slots)
            return -1;
        for (size_t i = 0; i < r->nslots; i++)
            if (r->slots[i].name) {
                *removal_slot(&g, r->slots[i].name, r->slots[i].len) = r->slots[i];
                g.n++;
            }
        free(r->slots);
        *r = g;
    }
    size_t len = strlen(name);
    struct removal *x = removal_slot(r, name, len);
    if (!x->name) {
        *x = (struct removal){name, len, self};
        r->n++;
    } else {
        x->self |= self;
    }
    return 0;
}

/* Whether the lower layers' path NAME goes: NAME itself or one of its
 * directories is removed ("" is the top directory: an opaque whiteout at
 * the top hides everything below it). */
static bool removed(const struct removals *r, const char *name)
{
    const struct removal *x = removal_slot(r, "", 0);
    if (x->name)
        return true;
    for (const char *p = name;; p++) {
        if (*p == '/' || !*p) {
            x = removal_slot(r, name, (size_t)(p - name));
            if (x->name && (*p || x->self))
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
    struct removals r = {0};
    int rc = -1;
    for (size_t k = 0; k < l->n; k++) {
        const struct entry *e = &l->v[k];
        if (e->kind == E_WHITEOUT || e->kind == E_OPAQUE) {
            if (add_removal(&r, e->name, e->kind == E_WHITEOUT) != 0)
                goto out;
        } else if (e->kind != E_DIR) {
            const struct node *nd = find_node(s, e->name);
            if (nd && nd->e->kind == E_DIR && add_removal(&r, e->name, false) != 0)
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
            for (size_t k = 0; k < n; k++) {
                if (delivered[k] || want[k]->layer != li || want[k]->e->seq != this)
                    continue;
                uint64_t left = start - (uint64_t)archive_filter_bytes(in, 0);
                data[k] = read_all(in, max_bytes, &lens[k], &left);
                errs[k] = data[k] ? 0 : errno;
                break;
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
    }
    free(s->images);
    free(s->nodes);
    free(s->slots);
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
